package protection

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/tally"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// step is part of a mailbox's event history: sends or counted bounces.
type step struct {
	sends, bounces int
}

func sends(n int) step   { return step{sends: n} }
func bounces(n int) step { return step{bounces: n} }

// history builds a status with health h from events replayed through the real tally.
func history(h bgv1.Health, steps ...step) *bgv1.MailboxStatus {
	st := &bgv1.MailboxStatus{Health: h}
	play(st, steps...)
	return st
}

func play(st *bgv1.MailboxStatus, steps ...step) {
	for _, s := range steps {
		for i := 0; i < s.sends; i++ {
			tally.Apply(st, tally.Event{Kind: tally.Send}, false)
		}
		for i := 0; i < s.bounces; i++ {
			tally.Apply(st, tally.Event{Kind: tally.Bounce}, false)
		}
	}
}

func pausedStatus(count int32, pausedAt time.Time, steps ...step) *bgv1.MailboxStatus {
	st := history(bgv1.HealthPaused, steps...)
	st.PauseCount = count
	st.PausedAt = &metav1.Time{Time: pausedAt}
	return st
}

func recovering(count int32, steps ...step) *bgv1.MailboxStatus {
	st := history(bgv1.HealthRecovering, sends(100), bounces(5))
	st.PauseCount = count
	tally.StartWindow(st)
	play(st, steps...)
	return st
}

func TestDecideMailbox(t *testing.T) {
	r := RulesFor(nil)
	manual := r
	manual.Automatic = false
	type want struct {
		health     bgv1.Health
		reason     string // "" = no transition
		message    string // checked when not empty
		pauseCount int32
		resumeIn   time.Duration // resumeAt - now; -1 = nil
		requeue    time.Duration
		newWindow  bool
	}
	cases := []struct {
		name  string
		rules Rules
		st    *bgv1.MailboxStatus
		ann   string
		now   time.Time
		want  want
	}{
		{"new mailbox is Healthy", r, &bgv1.MailboxStatus{}, "", t0,
			want{health: bgv1.HealthHealthy, resumeIn: -1}},
		{"2 bounces in 60 sends stays Healthy", r, history("", sends(58), bounces(2)), "", t0,
			want{health: bgv1.HealthHealthy, resumeIn: -1}},
		{"exactly 3 in the last 60 sends: Warning", r, history(bgv1.HealthHealthy, sends(60), bounces(3)), "", t0,
			want{health: bgv1.HealthWarning, reason: bgv1.ReasonWarningThreshold,
				message: "3 bounces in the last 60 sends (warning at 3/60)", resumeIn: -1}},
		{"3 bounces, then 59 sends: still within the warning window", r, history(bgv1.HealthWarning, bounces(3), sends(59)), "", t0,
			want{health: bgv1.HealthWarning, resumeIn: -1}},
		{"3 bounces, then 60 sends: back to Healthy", r, history(bgv1.HealthWarning, bounces(3), sends(60)), "", t0,
			want{health: bgv1.HealthHealthy, reason: bgv1.ReasonBelowWarning,
				message: "0 bounces in the last 60 sends (warning at 3/60)", resumeIn: -1}},
		{"4 bounces in the last 100 sends: Warning, not Paused", r, history(bgv1.HealthHealthy, sends(100), bounces(4)), "", t0,
			want{health: bgv1.HealthWarning, reason: bgv1.ReasonWarningThreshold, message: "4 bounces in the last 60 sends (warning at 3/60)", resumeIn: -1}},
		{"exactly 5 in the last 100 sends: Paused", r, history(bgv1.HealthHealthy, sends(100), bounces(5)), "", t0,
			want{health: bgv1.HealthPaused, reason: bgv1.ReasonBounceThreshold,
				message: "5 bounces in the last 100 sends (pause at 5/100)", pauseCount: 1, resumeIn: time.Hour, requeue: time.Hour}},
		{"Warning straight to Paused", r, history(bgv1.HealthWarning, sends(100), bounces(5)), "", t0,
			want{health: bgv1.HealthPaused, reason: bgv1.ReasonBounceThreshold, pauseCount: 1, resumeIn: time.Hour, requeue: time.Hour}},
		{"5 bounces before 100 sends: all of them count", r, history(bgv1.HealthHealthy, sends(40), bounces(5)), "", t0,
			want{health: bgv1.HealthPaused, reason: bgv1.ReasonBounceThreshold,
				message: "5 bounces in the last 40 sends (pause at 5/100)", pauseCount: 1, resumeIn: time.Hour, requeue: time.Hour}},
		{"4 bounces, then 100 more sends: 0/100", r, history(bgv1.HealthWarning, sends(100), bounces(4), sends(100)), "", t0,
			want{health: bgv1.HealthHealthy, reason: bgv1.ReasonBelowWarning, message: "0 bounces in the last 60 sends (warning at 3/60)", resumeIn: -1}},
		{"bounces spread out: 5 over 101 sends is not 5/100", r,
			history(bgv1.HealthWarning, bounces(1), sends(50), bounces(4), sends(51)), "", t0,
			want{health: bgv1.HealthWarning, resumeIn: -1}},
		{"Paused before its cooldown: stays, requeued at resumeAt", r, pausedStatus(1, t0, sends(100), bounces(5)), "", t0.Add(20 * time.Minute),
			want{health: bgv1.HealthPaused, pauseCount: 1, resumeIn: 40 * time.Minute, requeue: 40 * time.Minute}},
		{"Paused at exactly resumeAt: Recovering with a fresh window", r, pausedStatus(1, t0, sends(100), bounces(5)), "", t0.Add(time.Hour),
			want{health: bgv1.HealthRecovering, reason: bgv1.ReasonCooldownElapsed, message: "cooldown of 1h0m0s (pause 1) elapsed",
				pauseCount: 1, resumeIn: -1, newWindow: true}},
		{"third pause waits cooldown*4", r, pausedStatus(3, t0), "", t0.Add(3 * time.Hour),
			want{health: bgv1.HealthPaused, pauseCount: 3, resumeIn: time.Hour, requeue: time.Hour}},
		{"tenth pause is capped at maxCooldown", r, pausedStatus(10, t0), "", t0.Add(16 * time.Hour),
			want{health: bgv1.HealthRecovering, reason: bgv1.ReasonCooldownElapsed, message: "cooldown of 16h0m0s (pause 10) elapsed",
				pauseCount: 10, resumeIn: -1, newWindow: true}},
		{"automatic off: no cooldown, stays Paused", manual, pausedStatus(1, t0), "", t0.Add(100 * time.Hour),
			want{health: bgv1.HealthPaused, pauseCount: 1, resumeIn: -1}},
		{"automatic off: a new resume annotation resumes", manual, pausedStatus(1, t0), "2026-11-25T13:00", t0.Add(time.Minute),
			want{health: bgv1.HealthRecovering, reason: bgv1.ReasonManualResume, pauseCount: 1, resumeIn: -1, newWindow: true,
				message: `resumed by hand (annotation bounceguard.io/resume="2026-11-25T13:00")`}},
		{"a resume annotation already acted on does nothing", manual,
			func() *bgv1.MailboxStatus { s := pausedStatus(2, t0); s.ResumeRequest = "x"; return s }(), "x", t0.Add(time.Minute),
			want{health: bgv1.HealthPaused, pauseCount: 2, resumeIn: -1}},
		{"manual resume also cuts an automatic cooldown short", r, pausedStatus(1, t0), "now", t0.Add(time.Minute),
			want{health: bgv1.HealthRecovering, reason: bgv1.ReasonManualResume, pauseCount: 1, resumeIn: -1, newWindow: true}},
		{"a resume annotation on a Healthy mailbox is acknowledged, nothing else", r, history(bgv1.HealthHealthy, sends(10)), "x", t0,
			want{health: bgv1.HealthHealthy, resumeIn: -1}},
		{"Recovering after 24 clean sends: not yet", r, recovering(1, sends(24)), "", t0,
			want{health: bgv1.HealthRecovering, pauseCount: 1, resumeIn: -1}},
		{"Recovering after exactly 25 clean sends: Healthy", r, recovering(1, sends(25)), "", t0,
			want{health: bgv1.HealthHealthy, reason: bgv1.ReasonCleanSends, pauseCount: 1, resumeIn: -1,
				message: "25 sends without a counted bounce since the pause ended (25 needed)"}},
		{"a counted bounce while Recovering: Paused again, next cooldown doubled", r, recovering(1, sends(12), bounces(1)), "", t0,
			want{health: bgv1.HealthPaused, reason: bgv1.ReasonRelapse, message: "1 bounce in 12 sends while recovering (pause 2)",
				pauseCount: 2, resumeIn: 2 * time.Hour, requeue: 2 * time.Hour}},
		{"Healthy for 99 sends after a pause keeps the ladder", r,
			func() *bgv1.MailboxStatus {
				s := recovering(2, sends(25))
				s.Health, s.HealthySinceSent = bgv1.HealthHealthy, s.Sent
				play(s, sends(99))
				return s
			}(), "", t0,
			want{health: bgv1.HealthHealthy, pauseCount: 2, resumeIn: -1}},
		{"Healthy for pause.withinSends sends resets the ladder", r,
			func() *bgv1.MailboxStatus {
				s := recovering(2, sends(25))
				s.Health, s.HealthySinceSent = bgv1.HealthHealthy, s.Sent
				play(s, sends(100))
				return s
			}(), "", t0,
			want{health: bgv1.HealthHealthy, pauseCount: 0, resumeIn: -1}},
		{"the bounces paid for by a pause do not count after it", r, recovering(1, sends(25)), "", t0,
			want{health: bgv1.HealthHealthy, reason: bgv1.ReasonCleanSends, pauseCount: 1, resumeIn: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.st.DeepCopy()
			d := DecideMailbox(tc.rules, tc.st, tc.ann, "", tc.now)
			if d.State.Health != tc.want.health {
				t.Fatalf("health = %s, want %s (transition %+v)", d.State.Health, tc.want.health, d.Transition)
			}
			switch {
			case tc.want.reason == "" && d.Transition != nil:
				t.Fatalf("unexpected transition %+v", d.Transition)
			case tc.want.reason != "" && d.Transition == nil:
				t.Fatalf("no transition, want %s", tc.want.reason)
			case d.Transition != nil:
				if d.Transition.Reason != tc.want.reason {
					t.Errorf("reason = %s, want %s", d.Transition.Reason, tc.want.reason)
				}
				if tc.want.message != "" && d.Transition.Message != tc.want.message {
					t.Errorf("message = %q, want %q", d.Transition.Message, tc.want.message)
				}
				if d.Transition.To != tc.want.health || d.Transition.From != or(before.Health, bgv1.HealthHealthy) {
					t.Errorf("transition %s -> %s, want %s -> %s", d.Transition.From, d.Transition.To, before.Health, tc.want.health)
				}
			}
			if d.State.PauseCount != tc.want.pauseCount {
				t.Errorf("pauseCount = %d, want %d", d.State.PauseCount, tc.want.pauseCount)
			}
			if tc.want.resumeIn < 0 {
				if d.State.ResumeAt != nil {
					t.Errorf("resumeAt = %v, want none", d.State.ResumeAt)
				}
			} else if d.State.ResumeAt == nil || d.State.ResumeAt.Sub(tc.now) != tc.want.resumeIn {
				t.Errorf("resumeAt = %v, want now+%s", d.State.ResumeAt, tc.want.resumeIn)
			}
			if d.RequeueAfter != tc.want.requeue {
				t.Errorf("requeueAfter = %s, want %s", d.RequeueAfter, tc.want.requeue)
			}
			if d.StartWindow != tc.want.newWindow {
				t.Errorf("startWindow = %v, want %v", d.StartWindow, tc.want.newWindow)
			}
			if d.State.ResumeRequest != tc.ann {
				t.Errorf("resumeRequest = %q, want the annotation %q acknowledged", d.State.ResumeRequest, tc.ann)
			}
			if tc.want.health == bgv1.HealthPaused && (d.State.PausedAt == nil) {
				t.Errorf("a Paused state needs pausedAt")
			}
			if tc.want.health == bgv1.HealthHealthy && tc.want.reason != "" && d.State.HealthySinceSent != tc.st.Sent {
				t.Errorf("healthySinceSent = %d, want %d", d.State.HealthySinceSent, tc.st.Sent)
			}
			if !equalStatus(before, tc.st) {
				t.Errorf("DecideMailbox modified its input")
			}
		})
	}
}

func equalStatus(a, b *bgv1.MailboxStatus) bool {
	return a.Sent == b.Sent && a.Health == b.Health && len(a.Ledger.BounceMarks) == len(b.Ledger.BounceMarks) &&
		a.PauseCount == b.PauseCount && a.ResumeRequest == b.ResumeRequest
}

func TestCooldownLadder(t *testing.T) {
	r := RulesFor(&bgv1.ProtectionPolicy{Spec: bgv1.ProtectionPolicySpec{Recovery: bgv1.RecoveryRules{
		Cooldown: metav1.Duration{Duration: time.Hour}, MaxCooldown: metav1.Duration{Duration: 16 * time.Hour}}}})
	for _, tc := range []struct {
		n    int32
		want time.Duration
	}{{0, time.Hour}, {1, time.Hour}, {2, 2 * time.Hour}, {3, 4 * time.Hour}, {5, 16 * time.Hour}, {6, 16 * time.Hour},
		{40, 16 * time.Hour}, {1 << 30, 16 * time.Hour}} {
		if got := r.CooldownFor(tc.n); got != tc.want {
			t.Errorf("CooldownFor(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}

func TestRulesForDefaults(t *testing.T) {
	d := RulesFor(nil)
	if d.Mode != bgv1.ModeObserve || d.Warning != (bgv1.Threshold{Bounces: 3, WithinSends: 60}) ||
		d.Pause != (bgv1.Threshold{Bounces: 5, WithinSends: 100}) || !d.Automatic || d.Cooldown != time.Hour ||
		d.MaxCooldown != 16*time.Hour || d.CleanSends != 25 || d.WarningPercent != 30 || d.PausePercent != 50 ||
		d.MinimumMailboxes != 3 || d.MaxPausedPercent != 50 || d.SafetyMinimum != 10 || d.PauseAction != bgv1.PauseActionSuspend {
		t.Fatalf("defaults = %+v", d)
	}
	p := &bgv1.ProtectionPolicy{Spec: bgv1.ProtectionPolicySpec{
		Recovery: bgv1.RecoveryRules{Automatic: ptr.To(false), Cooldown: metav1.Duration{Duration: 2 * time.Hour}},
		Safety:   bgv1.SafetyRules{MaxPausedPercent: 20}}}
	got := RulesFor(p)
	if got.Automatic || got.Cooldown != 2*time.Hour || got.MaxCooldown != 16*time.Hour || got.MaxPausedPercent != 20 || got.SafetyMinimum != 0 {
		t.Fatalf("explicit rules = %+v", got)
	}
}

// A person's hold (a non-empty bounceguard.io/hold annotation): Paused, reason Hold, in every state, with
// no cooldown and no step up the ladder; removing it turns the mailbox Recovering with a fresh window.
func TestHold(t *testing.T) {
	r := RulesFor(nil)
	heldStatus := func(base *bgv1.MailboxStatus) *bgv1.MailboxStatus {
		d := DecideMailbox(r, base, "", "list check", t0)
		d.Apply(base, r.Pause.WithinSends)
		return base
	}
	cases := []struct {
		name        string
		st          *bgv1.MailboxStatus
		hold        string
		resume      string
		health      bgv1.Health
		reason      string // "" = no transition
		pauseCount  int32
		freshWindow bool
	}{
		{"a Healthy mailbox is held", history(bgv1.HealthHealthy, sends(10)), "list check", "", bgv1.HealthPaused, bgv1.ReasonHold, 0, false},
		{"a Warning mailbox is held", history(bgv1.HealthWarning, sends(60), bounces(3)), "x", "", bgv1.HealthPaused, bgv1.ReasonHold, 0, false},
		{"a bounce-paused mailbox is held: no cooldown any more", history(bgv1.HealthHealthy, sends(100), bounces(5)), "x", "", bgv1.HealthPaused, bgv1.ReasonHold, 0, false},
		{"held stays held, whatever the bounces", heldStatus(history(bgv1.HealthHealthy, sends(100), bounces(9))), "list check", "", bgv1.HealthPaused, "", 0, false},
		{"a resume does not override a hold", heldStatus(history(bgv1.HealthHealthy, sends(10))), "list check", "go", bgv1.HealthPaused, "", 0, false},
		{"removing the hold: Recovering with a fresh window", heldStatus(history(bgv1.HealthHealthy, sends(100), bounces(2))), "", "", bgv1.HealthRecovering, bgv1.ReasonHoldReleased, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideMailbox(r, tc.st, tc.resume, tc.hold, t0.Add(10*time.Hour))
			if d.State.Health != tc.health || d.State.ResumeAt != nil || d.RequeueAfter != 0 || d.StartWindow != tc.freshWindow {
				t.Fatalf("state %+v, requeue %s, fresh window %v", d.State, d.RequeueAfter, d.StartWindow)
			}
			if (tc.reason == "") != (d.Transition == nil) || (d.Transition != nil && d.Transition.Reason != tc.reason) {
				t.Fatalf("transition %+v, want %q", d.Transition, tc.reason)
			}
			if d.State.PauseCount != tc.pauseCount && tc.st.PauseCount == 0 {
				t.Fatalf("pause count %d: a hold is no step up the cooldown ladder", d.State.PauseCount)
			}
		})
	}
}

// status.history: the last 5 transitions, oldest first, each with its time, ends, reason and
// evidence, written by the same Apply the reconciler uses, through a real walk of the state machine.
func TestHistoryKeepsTheLastFiveTransitions(t *testing.T) {
	r := RulesFor(nil)
	st := &bgv1.MailboxStatus{}
	now := t0
	step := func(steps ...step) {
		play(st, steps...)
		d := DecideMailbox(r, st, "", "", now)
		d.Apply(st, r.Pause.WithinSends)
	}
	step(sends(57), bounces(3)) // Healthy → Warning
	step(sends(40), bounces(2)) // → Paused
	now = now.Add(time.Hour + time.Minute)
	step()          // → Recovering (cooldown elapsed)
	step(sends(25)) // → Healthy (clean sends)
	now = now.Add(time.Minute)
	step(sends(5), bounces(3)) // → Warning
	step(bounces(2))           // → Paused again
	want := []struct {
		from, to bgv1.Health
		reason   string
	}{
		{bgv1.HealthWarning, bgv1.HealthPaused, bgv1.ReasonBounceThreshold},
		{bgv1.HealthPaused, bgv1.HealthRecovering, bgv1.ReasonCooldownElapsed},
		{bgv1.HealthRecovering, bgv1.HealthHealthy, bgv1.ReasonCleanSends},
		{bgv1.HealthHealthy, bgv1.HealthWarning, bgv1.ReasonWarningThreshold},
		{bgv1.HealthWarning, bgv1.HealthPaused, bgv1.ReasonBounceThreshold},
	}
	if len(st.History) != len(want) {
		t.Fatalf("history has %d entries, want %d: %+v", len(st.History), len(want), st.History)
	}
	for i, w := range want {
		h := st.History[i]
		if h.From != w.from || h.To != w.to || h.Reason != w.reason || h.Evidence == "" || h.Time.IsZero() {
			t.Fatalf("entry %d is %+v, want %v→%v %s with evidence and time", i, h, w.from, w.to, w.reason)
		}
	}
	if last := st.History[4]; last.Evidence != st.Evidence() || !last.Time.Time.Equal(now) {
		t.Fatalf("the last entry %+v is not the current health's evidence %q at %s", last, st.Evidence(), now)
	}
	if first := st.History[0]; first.Evidence != "5 bounces in the last 97 sends (pause at 5/100)" {
		t.Fatalf("the first pause's evidence is %q", first.Evidence)
	}
}

// A person's hold reason goes into the evidence, bounded at the API's 256 bytes without splitting a rune.
func TestHistoryEvidenceIsBounded(t *testing.T) {
	h := Remember(nil, Transition{From: bgv1.HealthHealthy, To: bgv1.HealthPaused, Reason: bgv1.ReasonHold,
		Message: strings.Repeat("é", 300), At: t0})
	if e := h[0].Evidence; len(e) > 256 || !utf8.ValidString(e) || !strings.HasSuffix(e, "...") {
		t.Fatalf("evidence of %d bytes, valid UTF-8 %v: %q", len(e), utf8.ValidString(e), e)
	}
}
