package controllers

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// A Mailbox as the API server returns it, without managedFields, stays under 4 KiB of JSON
// however many events it has seen — here 100,000 (one bounce in nine: 20 bounce marks, 200 remembered
// ids), paused by RemoveFromCampaigns from 20 campaigns, with five transitions in its history (the longest
// evidence the state machine writes at the default thresholds), the account as the sync read it, and every
// condition and annotation a long-lived mailbox carries; then the same while Smartlead shows it back in all
// 20 campaigns and the pause was reapplied (condition Drifted). Unmonitored is judged only of mailboxes
// bounceguard does not hold paused, AccountFound=False only of accounts that are gone: neither goes with
// Drifted, and each is smaller.
func TestMailboxStaysUnder4KiB(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 2, 3, 4, 5, 123000000, time.UTC))
	worst := func() *bgv1.Mailbox {
		mb := &bgv1.Mailbox{TypeMeta: metav1.TypeMeta{APIVersion: "bounceguard.io/v1alpha1", Kind: "Mailbox"},
			ObjectMeta: metav1.ObjectMeta{Name: "firstname.lastname-longer-company-name-com", Namespace: "agency-client-namespace-42",
				UID: "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", ResourceVersion: "123456789", Generation: 3, CreationTimestamp: now,
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "bounceguard"},
				Finalizers:  []string{"bounceguard.io/smartlead-pause"},
				Annotations: map[string]string{"bounceguard.io/resume": "2026-11-25 list checked"}},
			Spec: bgv1.MailboxSpec{Email: "firstname.lastname@longer-company-name.com", SmartleadAccountID: ptr.To[int64](12345678),
				PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
		st := &mb.Status
		for i := range 100000 {
			kind := tally.Send
			if i%9 == 0 {
				kind = tally.Bounce
			}
			tally.Apply(st, tally.Event{ID: fmt.Sprintf("r%022d", i), Kind: kind, At: now.Add(time.Duration(i) * time.Second)}, false)
		}
		tally.Refresh(st, 100)
		st.Health, st.HealthReason = bgv1.HealthPaused, "BounceThreshold"
		st.PauseCount, st.PausedAt, st.ResumeAt, st.LastEventAt = 12, &now, &now, &now
		st.HealthySinceSent, st.ResumeRequest, st.ObservedGeneration = 99999, "2026-11-25 list checked", 3
		var campaigns []int64
		for i := range 20 {
			campaigns = append(campaigns, int64(1234560+i))
		}
		st.Smartlead = bgv1.SmartleadState{AccountID: 12345678, Paused: true, Reason: "BounceThreshold",
			Action: bgv1.PauseActionRemoveFromCampaigns, Suspended: true, SuspendRequested: true, RemovedCampaignIDs: campaigns, PausedAt: &now,
			LastOperation: "RemoveFromCampaigns 1234579", LastAttemptAt: &now,
			APIKeySecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}} // baseURL: Smartlead's own, recorded as ""
		st.Account = &bgv1.AccountState{ID: 12345678, Suspended: true, DailyLimit: 1500, WarmupEnabled: true, SMTPOK: true, IMAPOK: true,
			PausedAt: &now}
		for _, h := range []struct {
			from, to         bgv1.Health
			reason, evidence string
		}{
			{bgv1.HealthRecovering, bgv1.HealthPaused, "Relapse", "1 bounce in 24 sends while recovering (pause 11)"},
			{bgv1.HealthPaused, bgv1.HealthRecovering, "CooldownElapsed", "cooldown of 16h0m0s (pause 11) elapsed"},
			{bgv1.HealthRecovering, bgv1.HealthHealthy, "CleanSends", "25 sends without a counted bounce since the pause ended (25 needed)"},
			{bgv1.HealthHealthy, bgv1.HealthWarning, "WarningThreshold", "3 bounces in the last 60 sends (warning at 3/60)"},
			{bgv1.HealthWarning, bgv1.HealthPaused, "BounceThreshold", "5 bounces in the last 100 sends (pause at 5/100)"},
		} {
			st.History = append(st.History, bgv1.HealthTransition{Time: now, From: h.from, To: h.to, Reason: h.reason, Evidence: h.evidence})
		}
		mb.Status.Account.PausedAt = mb.Status.Smartlead.PausedAt
		// The conditions as the reconciler writes them, with their real messages.
		setMailboxConditions(mb, bgv1.ModeEnforce, "", "", action{want: true, reason: "BounceThreshold"})
		setSyncConditions(mb, bgv1.DriftReapply)
		return mb
	}
	drifted := worst()
	drifted.Status.Account.Suspended, drifted.Status.Account.BackInCampaigns = false, 20
	drifted.Status.Smartlead.Reapplied = true
	setSyncConditions(drifted, bgv1.DriftReapply)
	if c := meta.FindStatusCondition(drifted.Status.Conditions, bgv1.ConditionDrifted); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("the drifted fixture is not Drifted: %+v", drifted.Status.Conditions)
	}
	// The one known corner over 4 KiB (README, "How big a Mailbox is"): drift shown on a pause of 20
	// campaigns, until the states agree again, by some 200 bytes. It is held to 4.5 KiB.
	for _, c := range []struct {
		name  string
		mb    *bgv1.Mailbox
		limit int
	}{{"paused", worst(), 4096}, {"paused and drifted", drifted, 4608}} {
		name, mb := c.name, c.mb
		data, err := json.Marshal(mb)
		if err != nil {
			t.Fatal(err)
		}
		ledger, _ := json.Marshal(mb.Status.Ledger)
		history, _ := json.Marshal(mb.Status.History)
		if len(data) >= c.limit {
			t.Errorf("%s: the Mailbox is %d bytes of JSON (ledger %d, history %d)", name, len(data), len(ledger), len(history))
		}
		t.Logf("%s: Mailbox %d bytes of JSON, ledger %d (%d ids, %d marks), history %d", name, len(data), len(ledger),
			tally.RecentEvents(&mb.Status.Ledger), len(mb.Status.Ledger.BounceMarks), len(history))
	}
}
