package protection

// Step is the Smartlead call a mailbox needs now: none, a pause, a resume, or a drifted pause applied again.
type Step int

const (
	// StepNone leaves Smartlead as it is (the pause wanted is in force, none is wanted nor held, or the
	// account a wanted pause would act on is gone).
	StepNone Step = iota
	// StepPause pauses the mailbox, or finish a pause begun and not done.
	StepPause
	// StepResume undoes the pause bounceguard holds.
	StepResume
	// StepReapply pauses again an account that Smartlead shows sending although bounceguard holds it paused.
	StepReapply
)

// String names the step.
func (s Step) String() string {
	switch s {
	case StepNone:
		return "None"
	case StepPause:
		return "Pause"
	case StepResume:
		return "Resume"
	case StepReapply:
		return "Reapply"
	}
	return "Step(?)"
}

// StepInput holds the facts a mailbox's Smartlead step is decided from.
type StepInput struct {
	// WantPaused: the mode and health want the mailbox paused in Smartlead (WantPaused).
	WantPaused bool
	// Paused: bounceguard's pause is done (status.smartlead.paused). A paused mailbox holds its pause.
	Paused bool
	// HoldsPause: bounceguard has paused, or begun pausing, the mailbox (any step of a pause on record).
	HoldsPause bool
	// AccountGone: Smartlead answered that it no longer has the mailbox's account (status.smartlead.accountGone).
	AccountGone bool
	// ReapplyDue: Smartlead shows the pause undone, the policy's drift action is Reapply, and this pause has
	// not been applied again yet.
	ReapplyDue bool
}

// SmartleadStep decides the Smartlead call a mailbox needs now. A wanted pause is made (or finished) unless
// it is in force, when a drift is reapplied once, or unless the account it would act on is gone and nothing
// of a pause is held; a pause held and no longer wanted is undone. Both the reconciler, which queues the
// work, and the queue's worker, which reads the mailbox again before it calls, decide with it.
func SmartleadStep(in StepInput) Step {
	switch {
	case in.WantPaused && in.AccountGone && !in.HoldsPause:
		return StepNone // nothing to pause: the account is gone
	case in.WantPaused && in.Paused && in.ReapplyDue:
		return StepReapply
	case in.WantPaused && in.Paused:
		return StepNone // in force
	case in.WantPaused:
		return StepPause
	case in.HoldsPause:
		return StepResume
	}
	return StepNone
}
