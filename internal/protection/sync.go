package protection

import (
	"fmt"
	"strings"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Coverage thresholds: a mailbox is unmonitored when Smartlead's daily_sent_count runs ahead of
// the sends received by more than GapSends and by more than GapPercent of Smartlead's count.
const (
	GapSends   = 10
	GapPercent = 20
)

// Unmonitored reports whether Smartlead's count of today's sends runs so far ahead of the sends
// bounceguard received that the mailbox cannot be protected: a campaign without the webhook, a wrong URL.
func Unmonitored(smartleadSentToday, received int32) bool {
	gap := int64(smartleadSentToday) - int64(received)
	return gap > GapSends && gap*100 > int64(smartleadSentToday)*GapPercent
}

// CoverageMessage explains a coverage gap.
func CoverageMessage(g *bgv1.CoverageGap) string {
	return fmt.Sprintf("Smartlead counts %d sends today, bounceguard received %d since yesterday 00:00 UTC: "+
		"is the webhook set on every campaign of this mailbox?", g.SentToday, g.Received)
}

// Drift reports whether Smartlead shows sending again a mailbox that bounceguard holds paused, and how:
// unsuspended although bounceguard suspended it, a daily limit above 0 although bounceguard zeroed it, or
// back in campaigns bounceguard removed it from. It is judged only of a finished pause and an account the
// sync found and read after that pause took effect (acc.PausedAt is the pause's start): an account read
// before the pause shows it sending, rightly.
func Drift(sl *bgv1.SmartleadState, acc *bgv1.AccountState) (bool, string) {
	if !sl.Paused || acc == nil || acc.Missing || sl.PausedAt == nil || acc.PausedAt == nil || !acc.PausedAt.Equal(sl.PausedAt) {
		return false, ""
	}
	var how []string
	if sl.Suspended && !acc.Suspended {
		how = append(how, "unsuspended")
	}
	if sl.DailyLimitZeroed && acc.DailyLimit > 0 {
		how = append(how, fmt.Sprintf("daily limit %d", acc.DailyLimit))
	}
	if acc.BackInCampaigns > 0 {
		how = append(how, fmt.Sprintf("back in %d removed campaigns", acc.BackInCampaigns))
	}
	if len(how) == 0 {
		return false, ""
	}
	return true, "Smartlead shows it sending again: " + strings.Join(how, ", ")
}
