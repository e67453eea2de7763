// Package protection holds bounceguard's decisions as small pure functions: the mailbox and domain state
// machines, the cooldown ladder, the domain's unhealthy ratio, what each mode does and the fleet's safety
// limit. Every function takes the current time as an argument; nothing here reads a clock or calls an API.
package protection

import (
	"time"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Defaults of a ProtectionPolicy, applied here too so that objects written without API-server defaulting
// (fake clients, old objects) behave as documented.
const (
	DefaultWarningBounces     = 3
	DefaultWarningWithinSends = 60
	DefaultPauseBounces       = 5
	DefaultPauseWithinSends   = 100
	DefaultWarningPercent     = 30
	DefaultPausePercent       = 50
	DefaultMinimumMailboxes   = 3
	DefaultCooldown           = time.Hour
	DefaultMaxCooldown        = 16 * time.Hour
	DefaultCleanSends         = 25
	DefaultMaxPausedPercent   = 50
	DefaultSafetyMinimum      = 10
	defaultPauseAction        = bgv1.PauseActionSuspend
	defaultMode               = bgv1.ModeObserve
	maxLadderShift            = 30
)

// Rules is a ProtectionPolicy's spec with every default filled in.
type Rules struct {
	Mode             bgv1.Mode
	Warning          bgv1.Threshold
	Pause            bgv1.Threshold
	CountSoftBounces bool
	WarningPercent   int32
	PausePercent     int32
	MinimumMailboxes int32
	Automatic        bool
	Cooldown         time.Duration
	MaxCooldown      time.Duration
	CleanSends       int32
	PauseAction      bgv1.PauseAction
	MaxPausedPercent int32
	SafetyMinimum    int32
}

// RulesFor returns the rules of a policy; a nil policy gives the defaults.
func RulesFor(p *bgv1.ProtectionPolicy) Rules {
	var s bgv1.ProtectionPolicySpec
	if p != nil {
		s = p.Spec
	}
	r := Rules{
		Mode:             or(s.Mode, defaultMode),
		Warning:          s.Mailbox.Warning,
		Pause:            s.Mailbox.Pause,
		CountSoftBounces: s.Mailbox.CountSoftBounces,
		WarningPercent:   or(s.Domain.WarningPercent, DefaultWarningPercent),
		PausePercent:     or(s.Domain.PausePercent, DefaultPausePercent),
		MinimumMailboxes: or(s.Domain.MinimumMailboxes, DefaultMinimumMailboxes),
		Automatic:        s.Recovery.Automatic == nil || *s.Recovery.Automatic,
		Cooldown:         or(s.Recovery.Cooldown.Duration, DefaultCooldown),
		MaxCooldown:      or(s.Recovery.MaxCooldown.Duration, DefaultMaxCooldown),
		CleanSends:       or(s.Recovery.CleanSends, DefaultCleanSends),
		PauseAction:      or(s.Smartlead.PauseAction, defaultPauseAction),
		MaxPausedPercent: or(s.Safety.MaxPausedPercent, DefaultMaxPausedPercent),
		SafetyMinimum:    s.Safety.MinimumMailboxes,
	}
	if r.Warning.Bounces == 0 {
		r.Warning = bgv1.Threshold{Bounces: DefaultWarningBounces, WithinSends: DefaultWarningWithinSends}
	}
	if r.Pause.Bounces == 0 {
		r.Pause = bgv1.Threshold{Bounces: DefaultPauseBounces, WithinSends: DefaultPauseWithinSends}
	}
	// safety.minimumMailboxes may legitimately be 0 ("always limit"); only an unset Safety block means the default.
	if s.Safety == (bgv1.SafetyRules{}) {
		r.SafetyMinimum = DefaultSafetyMinimum
	}
	r.MaxCooldown = max(r.MaxCooldown, r.Cooldown)
	return r
}

// CooldownFor returns how long the n-th consecutive pause lasts: cooldown*2^(n-1), capped at maxCooldown.
func (r Rules) CooldownFor(pauseCount int32) time.Duration {
	shift := min(max(pauseCount-1, 0), maxLadderShift)
	d := r.Cooldown << shift
	if d <= 0 || d > r.MaxCooldown || d>>shift != r.Cooldown {
		return r.MaxCooldown
	}
	return d
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
