package protection

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/tally"
)

func TestDomainLevel(t *testing.T) {
	r := RulesFor(nil)
	for _, tc := range []struct {
		total, unhealthy int32
		want             bgv1.Health
		msg              string
	}{
		{10, 0, bgv1.HealthHealthy, "0 of 10 mailboxes unhealthy (0%, warning at 30%)"},
		{10, 2, bgv1.HealthHealthy, "2 of 10 mailboxes unhealthy (20%, warning at 30%)"},
		{10, 3, bgv1.HealthWarning, "3 of 10 mailboxes unhealthy (30%, warning at 30%)"},
		{6, 2, bgv1.HealthWarning, "2 of 6 mailboxes unhealthy (33%, warning at 30%)"},
		{10, 4, bgv1.HealthWarning, ""},
		{6, 3, bgv1.HealthPaused, "3 of 6 mailboxes unhealthy (50%, pause at 50%)"},
		{7, 3, bgv1.HealthWarning, "3 of 7 mailboxes unhealthy (42%, warning at 30%)"},
		{3, 1, bgv1.HealthWarning, "1 of 3 mailboxes unhealthy (33%, warning at 30%)"},
		{3, 2, bgv1.HealthPaused, "2 of 3 mailboxes unhealthy (66%, pause at 50%)"},
		{2, 0, bgv1.HealthHealthy, ""},
		{2, 1, bgv1.HealthWarning, "1 of 2 mailboxes unhealthy (fewer than 3 mailboxes: warning at 1, pause at 2)"},
		{2, 2, bgv1.HealthPaused, ""},
		{1, 1, bgv1.HealthWarning, ""},
		{0, 0, bgv1.HealthHealthy, ""},
	} {
		got, msg := DomainLevel(r, tc.total, tc.unhealthy)
		if got != tc.want || (tc.msg != "" && msg != tc.msg) {
			t.Errorf("DomainLevel(%d of %d) = %s %q, want %s %q", tc.unhealthy, tc.total, got, msg, tc.want, tc.msg)
		}
	}
}

func TestDecideDomain(t *testing.T) {
	r := RulesFor(nil)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }
	cases := []struct {
		name             string
		st               bgv1.DomainStatus
		total, unhealthy int32
		ann              string
		now              time.Time
		health           bgv1.Health
		reason           string
		pauseCount       int32
		requeue          time.Duration
	}{
		{"healthy stays healthy", bgv1.DomainStatus{}, 6, 1, "", t0, bgv1.HealthHealthy, "", 0, 0},
		{"30% turns Warning", bgv1.DomainStatus{Health: bgv1.HealthHealthy}, 10, 3, "", t0, bgv1.HealthWarning, bgv1.ReasonDomainThreshold, 0, 0},
		{"50% pauses", bgv1.DomainStatus{Health: bgv1.HealthWarning}, 6, 3, "", t0, bgv1.HealthPaused, bgv1.ReasonDomainThreshold, 1, time.Hour},
		{"Warning back to Healthy", bgv1.DomainStatus{Health: bgv1.HealthWarning}, 6, 1, "", t0, bgv1.HealthHealthy, bgv1.ReasonDomainRecovered, 0, 0},
		{"Paused during cooldown stays Paused", bgv1.DomainStatus{Health: bgv1.HealthPaused, PauseCount: 1, PausedAt: at(0)},
			6, 3, "", t0.Add(30 * time.Minute), bgv1.HealthPaused, "", 1, 30 * time.Minute},
		{"cooldown over: Recovering even though the ratio has not moved", bgv1.DomainStatus{Health: bgv1.HealthPaused, PauseCount: 1, PausedAt: at(0)},
			6, 3, "", t0.Add(time.Hour), bgv1.HealthRecovering, bgv1.ReasonCooldownElapsed, 1, 0},
		{"manual resume", bgv1.DomainStatus{Health: bgv1.HealthPaused, PauseCount: 2, PausedAt: at(0)},
			6, 3, "go", t0.Add(time.Minute), bgv1.HealthRecovering, bgv1.ReasonManualResume, 2, 0},
		{"Recovering at the same ratio stays Recovering", bgv1.DomainStatus{Health: bgv1.HealthRecovering, PauseCount: 1, UnhealthyAtRecovery: 3},
			6, 3, "", t0, bgv1.HealthRecovering, "", 1, 0},
		{"Recovering between warning and pause stays Recovering", bgv1.DomainStatus{Health: bgv1.HealthRecovering, PauseCount: 1, UnhealthyAtRecovery: 3},
			6, 2, "", t0, bgv1.HealthRecovering, "", 1, 0},
		{"Recovering below warning: Healthy", bgv1.DomainStatus{Health: bgv1.HealthRecovering, PauseCount: 1, UnhealthyAtRecovery: 3},
			6, 1, "", t0, bgv1.HealthHealthy, bgv1.ReasonDomainRecovered, 1, 0},
		{"Recovering and worse again: Paused, next rung", bgv1.DomainStatus{Health: bgv1.HealthRecovering, PauseCount: 1, UnhealthyAtRecovery: 3},
			6, 4, "", t0, bgv1.HealthPaused, bgv1.ReasonRelapse, 2, 2 * time.Hour},
		{"Healthy for maxCooldown resets the ladder before the next pause", bgv1.DomainStatus{Health: bgv1.HealthHealthy, PauseCount: 3, HealthySince: at(0)},
			6, 3, "", t0.Add(16 * time.Hour), bgv1.HealthPaused, bgv1.ReasonDomainThreshold, 1, time.Hour},
		{"Healthy for less keeps the ladder", bgv1.DomainStatus{Health: bgv1.HealthHealthy, PauseCount: 3, HealthySince: at(0)},
			6, 3, "", t0.Add(15 * time.Hour), bgv1.HealthPaused, bgv1.ReasonDomainThreshold, 4, 8 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideDomain(r, &tc.st, tc.total, tc.unhealthy, tc.ann, tc.now)
			if d.State.Health != tc.health || d.State.PauseCount != tc.pauseCount || d.RequeueAfter != tc.requeue {
				t.Fatalf("got %s pauseCount=%d requeue=%s (transition %+v), want %s %d %s",
					d.State.Health, d.State.PauseCount, d.RequeueAfter, d.Transition, tc.health, tc.pauseCount, tc.requeue)
			}
			if (tc.reason == "") != (d.Transition == nil) || (d.Transition != nil && d.Transition.Reason != tc.reason) {
				t.Fatalf("transition %+v, want reason %q", d.Transition, tc.reason)
			}
		})
	}
}

// A domain whose mailboxes stop bouncing must come back without a person, whatever the cooldowns. The
// domain's unhealthy count is not scripted: six mailboxes run their own state machine (three of them
// crossed the pause threshold), send only while Enforce lets them (neither they nor their domain is
// Paused), and the domain counts their health at every step, as the reconcilers do.
func TestDomainNeverDeadlocks(t *testing.T) {
	for _, cooldown := range []time.Duration{time.Minute, time.Hour, 7 * time.Hour} {
		r := RulesFor(nil)
		r.Cooldown, r.MaxCooldown = cooldown, 16*cooldown
		boxes := make([]bgv1.MailboxStatus, 6)
		seq := 0
		event := func(st *bgv1.MailboxStatus, kind tally.Kind) {
			seq++
			tally.Apply(st, tally.Event{ID: fmt.Sprint(seq), Kind: kind}, false)
		}
		now := t0
		for i := range boxes {
			for range 100 {
				event(&boxes[i], tally.Send)
			}
			if i < 3 { // three of them bounced past 5/100 before anything was paused
				for range 5 {
					event(&boxes[i], tally.Bounce)
				}
			}
			DecideMailbox(r, &boxes[i], "", "", now).Apply(&boxes[i], r.Pause.WithinSends)
		}
		var dom bgv1.DomainStatus
		wasPaused := false
		for step := 0; step < 10000; step++ {
			var unhealthy int32
			for i := range boxes {
				if Unhealthy(boxes[i].Health) {
					unhealthy++
				}
			}
			DecideDomain(r, &dom, int32(len(boxes)), unhealthy, "", now).Apply(&dom)
			wasPaused = wasPaused || dom.Health == bgv1.HealthPaused
			if wasPaused && dom.Health == bgv1.HealthHealthy {
				break
			}
			for i := range boxes {
				if paused, _ := WantPaused(bgv1.ModeEnforce, boxes[i].Health, dom.Health); !paused {
					event(&boxes[i], tally.Send) // no more bounces: the list was cleaned
				}
				DecideMailbox(r, &boxes[i], "", "", now).Apply(&boxes[i], r.Pause.WithinSends)
			}
			now = now.Add(time.Minute)
		}
		if !wasPaused || dom.Health != bgv1.HealthHealthy {
			t.Fatalf("cooldown %s: domain paused %v, ends %s (%s) after %s", cooldown, wasPaused, dom.Health, dom.HealthMessage, now.Sub(t0))
		}
		for i := range boxes {
			if boxes[i].Health == bgv1.HealthPaused {
				t.Fatalf("cooldown %s: mailbox %d still Paused once its domain recovered", cooldown, i)
			}
		}
	}
}

func TestModesAndSafety(t *testing.T) {
	for _, tc := range []struct {
		mode        bgv1.Mode
		own, domain bgv1.Health
		want        bool
		reason      string
	}{
		{bgv1.ModeObserve, bgv1.HealthPaused, "", false, ""},
		{bgv1.ModeSuggest, bgv1.HealthPaused, bgv1.HealthPaused, false, ""},
		{bgv1.ModeEnforce, bgv1.HealthPaused, bgv1.HealthHealthy, true, bgv1.ReasonBounceThreshold},
		{bgv1.ModeEnforce, bgv1.HealthWarning, bgv1.HealthPaused, true, bgv1.ReasonDomainPaused},
		{bgv1.ModeEnforce, bgv1.HealthRecovering, bgv1.HealthRecovering, false, ""},
		{bgv1.ModeEnforce, bgv1.HealthWarning, bgv1.HealthWarning, false, ""},
	} {
		if got, reason := WantPaused(tc.mode, tc.own, tc.domain); got != tc.want || reason != tc.reason {
			t.Errorf("WantPaused(%s, %s, %s) = %v %s", tc.mode, tc.own, tc.domain, got, reason)
		}
	}
	r := RulesFor(nil)
	for _, tc := range []struct {
		total, paused int32
		want          bool
	}{{9, 8, true}, {10, 4, true}, {10, 5, false}, {11, 5, false}, {12, 5, true}, {0, 0, true}} {
		if got, msg := SafetyAllows(r, tc.total, tc.paused); got != tc.want || got == (msg != "") {
			t.Errorf("SafetyAllows(%d paused of %d) = %v %q", tc.paused, tc.total, got, msg)
		}
	}
	if _, msg := SafetyAllows(r, 10, 5); msg != "pausing one more would pause 6 of 10 mailboxes (60%, limit 50%)" {
		t.Errorf("message = %q", msg)
	}
}
