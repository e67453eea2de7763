package protection

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Coverage: unmonitored when Smartlead's count runs more than 10 and more than 20% ahead of the sends
// received, row by row at the edges.
func TestUnmonitored(t *testing.T) {
	cases := []struct {
		smartlead, received int32
		want                bool
	}{
		{0, 0, false},
		{10, 0, false},      // 10 is not more than 10
		{11, 0, true},       // 11 ahead, 100%
		{40, 29, true},      // 11 ahead, 27.5%
		{55, 44, false},     // 11 ahead, exactly 20%: not more
		{56, 45, false},     // 11 ahead, 19.6%
		{100, 79, true},     // 21 ahead, 21%
		{100, 80, false},    // 20 ahead, 20%
		{30, 45, false},     // received more (yesterday's sends count too)
		{1500, 1210, false}, // 290 ahead is 19.3%
		{1500, 1190, true},  // 310 ahead is 20.7%
	}
	for _, c := range cases {
		if got := Unmonitored(c.smartlead, c.received); got != c.want {
			t.Errorf("Smartlead %d, received %d: unmonitored %v, want %v", c.smartlead, c.received, got, c.want)
		}
	}
}

// Drift (a paused account found sending again): judged per pause action, of a finished pause and a found
// account only.
func TestDrift(t *testing.T) {
	pausedAt := metav1.NewTime(t0)
	suspended := bgv1.SmartleadState{Paused: true, Action: bgv1.PauseActionSuspend, Suspended: true, PausedAt: &pausedAt}
	zeroed := bgv1.SmartleadState{Paused: true, Action: bgv1.PauseActionZeroDailyLimit, DailyLimitZeroed: true, PausedAt: &pausedAt}
	removed := bgv1.SmartleadState{Paused: true, Action: bgv1.PauseActionRemoveFromCampaigns, RemovedCampaignIDs: []int64{7, 8}, PausedAt: &pausedAt}
	read := func(a bgv1.AccountState) *bgv1.AccountState { a.PausedAt = &pausedAt; return &a } // read during this pause
	earlier := metav1.NewTime(t0.Add(-24 * time.Hour))
	cases := []struct {
		name string
		sl   bgv1.SmartleadState
		acc  *bgv1.AccountState
		want string
	}{
		{"suspended, and Smartlead agrees", suspended, read(bgv1.AccountState{ID: 1, Suspended: true, DailyLimit: 40}), ""},
		{"suspended, a person unsuspended it", suspended, read(bgv1.AccountState{ID: 1, DailyLimit: 40}), "Smartlead shows it sending again: unsuspended"},
		{"suspended, the account read before the pause", suspended, &bgv1.AccountState{ID: 1, DailyLimit: 40}, ""},
		{"suspended, the account read during an earlier pause", suspended, &bgv1.AccountState{ID: 1, DailyLimit: 40, PausedAt: &earlier}, ""},
		{"zeroed, and Smartlead agrees", zeroed, read(bgv1.AccountState{ID: 1}), ""},
		{"zeroed, a person restored the limit", zeroed, read(bgv1.AccountState{ID: 1, DailyLimit: 50}), "Smartlead shows it sending again: daily limit 50"},
		{"removed, and Smartlead agrees", removed, read(bgv1.AccountState{ID: 1, DailyLimit: 40}), ""},
		{"removed, a person put it back", removed, read(bgv1.AccountState{ID: 1, DailyLimit: 40, BackInCampaigns: 2}),
			"Smartlead shows it sending again: back in 2 removed campaigns"},
		{"not paused: nothing to drift from", bgv1.SmartleadState{}, &bgv1.AccountState{ID: 1, DailyLimit: 40}, ""},
		{"pausing, not yet paused", bgv1.SmartleadState{Action: bgv1.PauseActionSuspend}, &bgv1.AccountState{ID: 1}, ""},
		{"account gone", suspended, read(bgv1.AccountState{ID: 1, Missing: true}), ""},
		{"never synced", suspended, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			drifted, msg := Drift(&c.sl, c.acc)
			if drifted != (c.want != "") || msg != c.want {
				t.Fatalf("drift %v %q, want %q", drifted, msg, c.want)
			}
		})
	}
}
