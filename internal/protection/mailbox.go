package protection

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// Transition is a change of health with its evidence.
type Transition struct {
	From, To bgv1.Health
	// Reason names the rule that fired (BounceThreshold, CooldownElapsed, ...).
	Reason string
	// Message is the evidence, e.g. "5 bounces in the last 100 sends (pause at 5/100)".
	Message string
	// At is when it was decided.
	At time.Time
}

// MailboxState is the part of a Mailbox's status that the state machine owns.
type MailboxState struct {
	Health           bgv1.Health
	PauseCount       int32
	PausedAt         *time.Time
	ResumeAt         *time.Time
	HealthySinceSent int64
	ResumeRequest    string
}

// MailboxDecision is what DecideMailbox concluded.
type MailboxDecision struct {
	// State is the new state (equal to the old one when nothing changed).
	State MailboxState
	// Transition is set when the health changed.
	Transition *Transition
	// StartWindow asks for a fresh rolling window: the mailbox entered Recovering.
	StartWindow bool
	// RequeueAfter is when the decision may change without a new event (the end of a cooldown); 0: never.
	RequeueAfter time.Duration
}

// StateOf extracts the state machine's part of a mailbox status.
func StateOf(st *bgv1.MailboxStatus) MailboxState {
	s := MailboxState{Health: or(st.Health, bgv1.HealthHealthy), PauseCount: st.PauseCount,
		HealthySinceSent: st.HealthySinceSent, ResumeRequest: st.ResumeRequest}
	s.PausedAt, s.ResumeAt = timeOf(st.PausedAt), timeOf(st.ResumeAt)
	return s
}

// DecideMailbox runs one step of the mailbox state machine (Healthy, Warning, Paused, Recovering) over the
// mailbox's status, the policy's rules, the value of its bounceguard.io/resume annotation and the current
// time. It is the same in every mode: modes decide only what a state does.
//
// A person's hold (a non-empty bounceguard.io/hold annotation) comes first: the mailbox is Paused, reason
// Hold, with no cooldown and without a step up the cooldown ladder, until the annotation is removed; it
// then turns Recovering and must prove itself clean like any paused mailbox.
func DecideMailbox(r Rules, st *bgv1.MailboxStatus, resumeAnnotation, holdAnnotation string, now time.Time) MailboxDecision {
	cur := StateOf(st)
	next := cur
	d := MailboxDecision{}
	held := cur.Health == bgv1.HealthPaused && st.HealthReason == bgv1.ReasonHold
	switch {
	case holdAnnotation != "":
		next.ResumeRequest = resumeAnnotation // a resume does not override a hold; it is acknowledged
		if !held {
			start := now
			next.Health, next.PausedAt, next.ResumeAt = bgv1.HealthPaused, &start, nil
			d.Transition = &Transition{Reason: bgv1.ReasonHold,
				Message: fmt.Sprintf("held by a person (annotation %s=%q) until the annotation is removed", bgv1.AnnotationHold, holdAnnotation)}
		}
		d.RequeueAfter = settle(d.Transition, cur.Health, next.Health, nil, 0, now)
		d.State = next
		return d
	case held:
		next.Health, next.PausedAt, next.ResumeAt, next.ResumeRequest = bgv1.HealthRecovering, nil, nil, resumeAnnotation
		d.Transition = &Transition{Reason: bgv1.ReasonHoldReleased, Message: "annotation " + bgv1.AnnotationHold + " removed"}
		d.StartWindow = true
		d.RequeueAfter = settle(d.Transition, cur.Health, next.Health, nil, 0, now)
		d.State = next
		return d
	}
	// A new annotation value resumes a paused mailbox; in any other state it is acknowledged and forgotten,
	// so that an old value cannot resume a later pause.
	resumeRequested := resumeAnnotation != "" && resumeAnnotation != cur.ResumeRequest
	next.ResumeRequest = resumeAnnotation

	switch cur.Health {
	case bgv1.HealthPaused:
		next.PausedAt, next.ResumeAt, d.Transition, d.RequeueAfter = endOfPause(r, cur.PausedAt, cur.PauseCount, resumeRequested, resumeAnnotation, now)
		if d.Transition != nil {
			next.Health, next.PausedAt, next.ResumeAt = bgv1.HealthRecovering, nil, nil
			d.StartWindow = true
		}

	case bgv1.HealthRecovering:
		sends := st.Sent - st.Ledger.WindowStartSent
		bounces := tally.BouncesWithin(st, tally.MaxWindow)
		switch {
		case bounces > 0:
			next = paused(r, next, now)
			d.Transition = &Transition{Reason: bgv1.ReasonRelapse,
				Message: fmt.Sprintf("%s in %s while recovering (pause %d)", plural(int64(bounces), "bounce"), plural(sends, "send"), next.PauseCount)}
		case sends >= int64(r.CleanSends):
			next.Health, next.HealthySinceSent = bgv1.HealthHealthy, st.Sent
			d.Transition = &Transition{Reason: bgv1.ReasonCleanSends,
				Message: fmt.Sprintf("%s without a counted bounce since the pause ended (%d needed)", plural(sends, "send"), r.CleanSends)}
		}

	default: // Healthy or Warning
		if cur.Health == bgv1.HealthHealthy && cur.PauseCount > 0 && st.Sent-cur.HealthySinceSent >= int64(r.Pause.WithinSends) {
			next.PauseCount = 0 // stayed Healthy for a whole pause window: the ladder starts again
		}
		switch {
		case reached(st, r.Pause):
			next = paused(r, next, now)
			d.Transition = &Transition{Reason: bgv1.ReasonBounceThreshold, Message: Evidence(st, r.Pause, "pause")}
		case reached(st, r.Warning):
			next.Health = bgv1.HealthWarning
			if cur.Health != bgv1.HealthWarning {
				d.Transition = &Transition{Reason: bgv1.ReasonWarningThreshold, Message: Evidence(st, r.Warning, "warning")}
			}
		default:
			next.Health = bgv1.HealthHealthy
			if cur.Health != bgv1.HealthHealthy {
				next.HealthySinceSent = st.Sent
				d.Transition = &Transition{Reason: bgv1.ReasonBelowWarning, Message: Evidence(st, r.Warning, "warning")}
			}
		}
	}
	d.RequeueAfter = settle(d.Transition, cur.Health, next.Health, next.ResumeAt, d.RequeueAfter, now)
	d.State = next
	return d
}

// endOfPause is the step of a Paused mailbox or domain: a new resume annotation, or (recovery.automatic)
// the end of its cooldown, ends the pause with a transition. Otherwise it returns the pause's start and
// its end (none without automatic recovery) and how long until that end.
func endOfPause(r Rules, pausedAt *time.Time, pauseCount int32, resumeRequested bool, annotation string,
	now time.Time) (*time.Time, *time.Time, *Transition, time.Duration) {
	if resumeRequested {
		return pausedAt, nil, &Transition{Reason: bgv1.ReasonManualResume,
			Message: fmt.Sprintf("resumed by hand (annotation %s=%q)", bgv1.AnnotationResume, annotation)}, 0
	}
	if !r.Automatic {
		return pausedAt, nil, nil, 0 // only a person resumes it
	}
	start := now
	if pausedAt != nil {
		start = *pausedAt
	}
	cooldown := r.CooldownFor(pauseCount)
	resumeAt := start.Add(cooldown)
	if now.Before(resumeAt) {
		return &start, &resumeAt, nil, resumeAt.Sub(now)
	}
	return &start, &resumeAt, &Transition{Reason: bgv1.ReasonCooldownElapsed,
		Message: fmt.Sprintf("cooldown of %s (pause %d) elapsed", cooldown, pauseCount)}, 0
}

// settle completes a step: it fills in the transition's ends and, for a Paused result, returns when to
// look again (the end of its cooldown) unless requeue already says.
func settle(t *Transition, from, to bgv1.Health, resumeAt *time.Time, requeue time.Duration, now time.Time) time.Duration {
	if t != nil {
		t.From, t.To, t.At = from, to, now
	}
	if to == bgv1.HealthPaused && requeue == 0 && resumeAt != nil && now.Before(*resumeAt) {
		return resumeAt.Sub(now)
	}
	return requeue
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// paused moves a state to Paused: the next rung of the cooldown ladder starts now.
func paused(r Rules, s MailboxState, now time.Time) MailboxState {
	s.Health = bgv1.HealthPaused
	s.PauseCount, s.PausedAt, s.ResumeAt = nextRung(r, s.PauseCount, now)
	return s
}

// nextRung starts the next pause of the cooldown ladder now: the new pause count, the pause's start and
// its end (none without automatic recovery). Mailboxes and domains share it.
func nextRung(r Rules, pauseCount int32, now time.Time) (int32, *time.Time, *time.Time) {
	n, start := pauseCount+1, now
	if !r.Automatic {
		return n, &start, nil
	}
	end := now.Add(r.CooldownFor(n))
	return n, &start, &end
}

// reached reports whether a mailbox has at least t.Bounces counted bounces within its last t.WithinSends sends.
func reached(st *bgv1.MailboxStatus, t bgv1.Threshold) bool {
	return tally.BouncesWithin(st, t.WithinSends) >= t.Bounces
}

// Evidence describes a mailbox's window against a threshold, e.g. "5 bounces in the last 100 sends (pause at 5/100)".
func Evidence(st *bgv1.MailboxStatus, t bgv1.Threshold, what string) string {
	return fmt.Sprintf("%s in the last %s (%s at %d/%d)", plural(int64(tally.BouncesWithin(st, t.WithinSends)), "bounce"),
		plural(int64(tally.SendsWithin(st, t.WithinSends)), "send"), what, t.Bounces, t.WithinSends)
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Apply writes the decision into a mailbox status: its state, the transition's evidence, and the fresh
// rolling window of a mailbox entering Recovering (window displayed for pauseWithinSends). The reconciler
// and the simulations in the tests share it.
func (d MailboxDecision) Apply(st *bgv1.MailboxStatus, pauseWithinSends int32) {
	st.Health, st.PauseCount, st.HealthySinceSent, st.ResumeRequest = d.State.Health, d.State.PauseCount, d.State.HealthySinceSent, d.State.ResumeRequest
	st.PausedAt, st.ResumeAt = metaTimeOf(d.State.PausedAt), metaTimeOf(d.State.ResumeAt)
	if t := d.Transition; t != nil {
		st.HealthReason, st.HealthMessage = t.Reason, "" // the evidence is the history's
		st.History = Remember(st.History, *t)
	}
	if d.StartWindow {
		tally.StartWindow(st)
		tally.Refresh(st, pauseWithinSends)
	}
}

// MaxHistory is how many health transitions a mailbox's status.history keeps.
const MaxHistory = 5

// maxEvidence bounds a history entry's evidence (the API's limit).
const maxEvidence = 256

// Remember appends a transition to a history, keeping the last MaxHistory, oldest first.
func Remember(history []bgv1.HealthTransition, t Transition) []bgv1.HealthTransition {
	evidence := t.Message
	if len(evidence) > maxEvidence {
		evidence = strings.ToValidUTF8(evidence[:maxEvidence-3], "") + "..."
	}
	history = append(history, bgv1.HealthTransition{Time: metav1.NewTime(t.At.UTC().Truncate(time.Second)),
		From: t.From, To: t.To, Reason: t.Reason, Evidence: evidence})
	if over := len(history) - MaxHistory; over > 0 {
		history = slices.Delete(history, 0, over)
	}
	return history
}

func metaTimeOf(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	return &metav1.Time{Time: *t}
}
