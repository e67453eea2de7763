package protection

import (
	"fmt"
	"time"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Unhealthy reports whether a mailbox counts against its domain: its own health is Warning or Paused.
// A mailbox paused only because its domain is paused keeps its own health, so it does not count.
func Unhealthy(h bgv1.Health) bool {
	return h == bgv1.HealthWarning || h == bgv1.HealthPaused
}

// DomainLevel is the health a domain's current ratio calls for (Healthy, Warning or Paused) and the
// evidence, e.g. "3 of 6 mailboxes unhealthy (50%, pause at 50%)". Below minimumMailboxes, percentages
// are not used: one unhealthy mailbox is Warning, two are Paused.
func DomainLevel(r Rules, total, unhealthy int32) (bgv1.Health, string) {
	if total < r.MinimumMailboxes {
		msg := fmt.Sprintf("%d of %d mailboxes unhealthy (fewer than %d mailboxes: warning at 1, pause at 2)",
			unhealthy, total, r.MinimumMailboxes)
		switch {
		case unhealthy >= 2:
			return bgv1.HealthPaused, msg
		case unhealthy >= 1:
			return bgv1.HealthWarning, msg
		}
		return bgv1.HealthHealthy, msg
	}
	pct := Percent(unhealthy, total)
	switch {
	case int64(unhealthy)*100 >= int64(r.PausePercent)*int64(total):
		return bgv1.HealthPaused, fmt.Sprintf("%d of %d mailboxes unhealthy (%d%%, pause at %d%%)", unhealthy, total, pct, r.PausePercent)
	case int64(unhealthy)*100 >= int64(r.WarningPercent)*int64(total):
		return bgv1.HealthWarning, fmt.Sprintf("%d of %d mailboxes unhealthy (%d%%, warning at %d%%)", unhealthy, total, pct, r.WarningPercent)
	}
	return bgv1.HealthHealthy, fmt.Sprintf("%d of %d mailboxes unhealthy (%d%%, warning at %d%%)", unhealthy, total, pct, r.WarningPercent)
}

// Percent is part as a whole percentage of total, rounded down; 0 when total is 0.
func Percent(part, total int32) int32 {
	if total <= 0 {
		return 0
	}
	return int32(int64(part) * 100 / int64(total))
}

// DomainState is the part of a Domain's status that its state machine owns.
type DomainState struct {
	Health              bgv1.Health
	PauseCount          int32
	PausedAt            *time.Time
	ResumeAt            *time.Time
	HealthySince        *time.Time
	UnhealthyAtRecovery int32
	ResumeRequest       string
}

// DomainDecision is what DecideDomain concluded.
type DomainDecision struct {
	State        DomainState
	Transition   *Transition
	RequeueAfter time.Duration
}

// DomainStateOf extracts the state machine's part of a domain status.
func DomainStateOf(st *bgv1.DomainStatus) DomainState {
	s := DomainState{Health: or(st.Health, bgv1.HealthHealthy), PauseCount: st.PauseCount,
		UnhealthyAtRecovery: st.UnhealthyAtRecovery, ResumeRequest: st.ResumeRequest}
	s.PausedAt, s.ResumeAt, s.HealthySince = timeOf(st.PausedAt), timeOf(st.ResumeAt), timeOf(st.HealthySince)
	return s
}

// DecideDomain runs one step of the domain state machine:
//   - Healthy/Warning follow the ratio (DomainLevel); reaching the pause level pauses the domain, on the
//     same cooldown ladder as a mailbox (reset once the domain has stayed Healthy for maxCooldown).
//   - Paused → Recovering when the cooldown has passed (recovery.automatic) or a person resumes it.
//     Recovering lifts the cascade, so that the domain's mailboxes can send and prove themselves again.
//   - Recovering → Healthy once the ratio is below the warning level; Recovering → Paused (next rung)
//     when, at the pause level, more mailboxes are unhealthy than the fewest seen since it began
//     Recovering. So a domain whose mailboxes stop bouncing always comes back without a person.
func DecideDomain(r Rules, st *bgv1.DomainStatus, total, unhealthy int32, resumeAnnotation string, now time.Time) DomainDecision {
	cur := DomainStateOf(st)
	next := cur
	d := DomainDecision{}
	resumeRequested := resumeAnnotation != "" && resumeAnnotation != cur.ResumeRequest
	next.ResumeRequest = resumeAnnotation
	level, evidence := DomainLevel(r, total, unhealthy)

	switch cur.Health {
	case bgv1.HealthPaused:
		next.PausedAt, next.ResumeAt, d.Transition, d.RequeueAfter = endOfPause(r, cur.PausedAt, cur.PauseCount, resumeRequested, resumeAnnotation, now)
		if d.Transition != nil {
			d.Transition.Message += "; " + evidence
		}
		if d.Transition != nil {
			next.Health, next.PausedAt, next.ResumeAt, next.UnhealthyAtRecovery = bgv1.HealthRecovering, nil, nil, unhealthy
		}

	case bgv1.HealthRecovering:
		switch {
		case level == bgv1.HealthPaused && unhealthy > cur.UnhealthyAtRecovery:
			next = pauseDomain(r, next, now)
			d.Transition = &Transition{Reason: bgv1.ReasonRelapse, Message: evidence + " while recovering"}
		case level == bgv1.HealthHealthy:
			t := now
			next.Health, next.HealthySince, next.UnhealthyAtRecovery = bgv1.HealthHealthy, &t, 0
			d.Transition = &Transition{Reason: bgv1.ReasonDomainRecovered, Message: evidence}
		default:
			next.UnhealthyAtRecovery = min(cur.UnhealthyAtRecovery, unhealthy)
		}

	default: // Healthy or Warning
		if cur.Health == bgv1.HealthHealthy && cur.PauseCount > 0 && cur.HealthySince != nil &&
			now.Sub(*cur.HealthySince) >= r.MaxCooldown {
			next.PauseCount = 0
		}
		switch level {
		case bgv1.HealthPaused:
			next = pauseDomain(r, next, now)
			d.Transition = &Transition{Reason: bgv1.ReasonDomainThreshold, Message: evidence}
		case bgv1.HealthWarning:
			next.Health = bgv1.HealthWarning
			if cur.Health != bgv1.HealthWarning {
				d.Transition = &Transition{Reason: bgv1.ReasonDomainThreshold, Message: evidence}
			}
		default:
			next.Health = bgv1.HealthHealthy
			if cur.Health != bgv1.HealthHealthy || next.HealthySince == nil {
				t := now
				next.HealthySince = &t
			}
			if cur.Health != bgv1.HealthHealthy {
				d.Transition = &Transition{Reason: bgv1.ReasonDomainRecovered, Message: evidence}
			}
		}
	}
	d.RequeueAfter = settle(d.Transition, cur.Health, next.Health, next.ResumeAt, d.RequeueAfter, now)
	d.State = next
	return d
}

func pauseDomain(r Rules, s DomainState, now time.Time) DomainState {
	s.Health, s.HealthySince, s.UnhealthyAtRecovery = bgv1.HealthPaused, nil, 0
	s.PauseCount, s.PausedAt, s.ResumeAt = nextRung(r, s.PauseCount, now)
	return s
}

// Apply writes the decision into a domain status: its state and the transition's evidence.
func (d DomainDecision) Apply(st *bgv1.DomainStatus) {
	st.Health, st.PauseCount, st.UnhealthyAtRecovery, st.ResumeRequest = d.State.Health, d.State.PauseCount,
		d.State.UnhealthyAtRecovery, d.State.ResumeRequest
	st.PausedAt, st.ResumeAt, st.HealthySince = metaTimeOf(d.State.PausedAt), metaTimeOf(d.State.ResumeAt), metaTimeOf(d.State.HealthySince)
	if d.Transition != nil {
		st.HealthReason, st.HealthMessage = d.Transition.Reason, d.Transition.Message
	}
}
