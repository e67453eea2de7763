package protection

import "testing"

// Every combination of the facts, and the step each one needs. Paused without HoldsPause never happens (a
// done pause is held); those rows pin what the decision does with them all the same.
func TestSmartleadStep(t *testing.T) {
	const (
		none    = StepNone
		pause   = StepPause
		resume  = StepResume
		reapply = StepReapply
	)
	rows := []struct {
		want, paused, holds, gone, due bool
		step                           Step
	}{
		// Not wanted paused: resume whatever is held, else nothing.
		{false, false, false, false, false, none},
		{false, false, false, false, true, none},
		{false, false, false, true, false, none},
		{false, false, false, true, true, none},
		{false, false, true, false, false, resume},
		{false, false, true, false, true, resume},
		{false, false, true, true, false, resume},
		{false, false, true, true, true, resume},
		{false, true, false, false, false, none},
		{false, true, false, false, true, none},
		{false, true, false, true, false, none},
		{false, true, false, true, true, none},
		{false, true, true, false, false, resume},
		{false, true, true, false, true, resume},
		{false, true, true, true, false, resume},
		{false, true, true, true, true, resume},
		// Wanted paused, nothing done yet: pause, unless the account is gone and nothing is held.
		{true, false, false, false, false, pause},
		{true, false, false, false, true, pause},
		{true, false, false, true, false, none},
		{true, false, false, true, true, none},
		{true, false, true, false, false, pause},
		{true, false, true, false, true, pause},
		{true, false, true, true, false, pause},
		{true, false, true, true, true, pause},
		// Wanted paused and in force: nothing, or a reapply once it drifted (unless gone with nothing held).
		{true, true, false, false, false, none},
		{true, true, false, false, true, reapply},
		{true, true, false, true, false, none},
		{true, true, false, true, true, none},
		{true, true, true, false, false, none},
		{true, true, true, false, true, reapply},
		{true, true, true, true, false, none},
		{true, true, true, true, true, reapply},
	}
	seen := map[StepInput]bool{}
	for _, r := range rows {
		in := StepInput{WantPaused: r.want, Paused: r.paused, HoldsPause: r.holds, AccountGone: r.gone, ReapplyDue: r.due}
		seen[in] = true
		if got := SmartleadStep(in); got != r.step {
			t.Errorf("%+v: step %v, want %v", in, got, r.step)
		}
	}
	if len(seen) != 32 {
		t.Errorf("the table covers %d of the 32 combinations", len(seen))
	}
}
