package protection

import (
	"fmt"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// WouldPause reports whether Enforce would hold a mailbox paused, and why: its own health is Paused
// (BounceThreshold) or its domain's is (DomainPaused). Recovering is never paused: it must send to recover.
func WouldPause(own, domain bgv1.Health) (bool, string) {
	switch {
	case own == bgv1.HealthPaused:
		return true, bgv1.ReasonBounceThreshold
	case domain == bgv1.HealthPaused:
		return true, bgv1.ReasonDomainPaused
	}
	return false, ""
}

// WantPaused reports whether a mailbox must be paused in Smartlead now: only in Enforce, when WouldPause.
func WantPaused(mode bgv1.Mode, own, domain bgv1.Health) (bool, string) {
	if mode != bgv1.ModeEnforce {
		return false, ""
	}
	return WouldPause(own, domain)
}

// SafetyAllows reports whether one more mailbox may be paused in Smartlead when pausedNow of the policy's
// total mailboxes already are. Fleets smaller than the safety minimum have no limit. When it refuses, the
// message says why, e.g. "pausing one more would pause 6 of 10 mailboxes (60%, limit 50%)".
func SafetyAllows(r Rules, total, pausedNow int32) (bool, string) {
	if total < r.SafetyMinimum || total <= 0 {
		return true, ""
	}
	after := pausedNow + 1
	if int64(after)*100 <= int64(r.MaxPausedPercent)*int64(total) {
		return true, ""
	}
	return false, fmt.Sprintf("pausing one more would pause %d of %d mailboxes (%d%%, limit %d%%)",
		after, total, Percent(after, total), r.MaxPausedPercent)
}
