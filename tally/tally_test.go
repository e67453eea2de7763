package tally

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// play applies a script of events: "s" a send, "b" a hard bounce, "f" a soft bounce, "N*x" N of x.
func play(st *bgv1.MailboxStatus, countSoft bool, script string) {
	for _, step := range strings.Fields(script) {
		n, what := 1, step
		if i := strings.IndexByte(step, '*'); i > 0 {
			fmt.Sscanf(step[:i], "%d", &n)
			what = step[i+1:]
		}
		for range n {
			ev := Event{Kind: Send}
			switch what {
			case "b":
				ev.Kind = Bounce
			case "f":
				ev.Kind, ev.Soft = Bounce, true
			}
			Apply(st, ev, countSoft)
		}
	}
}

func TestRollingWindow(t *testing.T) {
	cases := []struct {
		name      string
		script    string
		countSoft bool
		n         int32
		want      int32
		wantSends int32
	}{
		{"no events", "", false, 100, 0, 0},
		{"SPEC: 100 sends then 5 bounces is 5/100", "100*s 5*b", false, 100, 5, 100},
		{"SPEC: 4 bounces then 100 more sends is 0/100", "100*s 4*b 100*s", false, 100, 0, 100},
		{"4 bounces then 99 sends still counts them", "100*s 4*b 99*s", false, 100, 4, 100},
		{"fewer sends than the window: all bounces count", "10*s 3*b", false, 60, 3, 10},
		{"bounces before any send count", "3*b", false, 60, 3, 0},
		{"exactly 3 in the last 60", "1*b 60*s 3*b", false, 60, 3, 60},
		{"a bounce after the 60th most recent send counts", "b 59*s", false, 60, 1, 59},
		{"a bounce before the 60th most recent send does not", "s b 60*s", false, 60, 0, 60},
		{"interleaved", "50*s b 30*s b 30*s b", false, 60, 2, 60},
		{"soft bounces are not counted by default", "100*s 5*f", false, 100, 0, 100},
		{"soft bounces count with countSoftBounces", "100*s 5*f", true, 100, 5, 100},
		{"a large window keeps 1000 sends", "b 999*s", false, 1000, 1, 999},
		{"beyond 1000 sends a bounce is pruned", "b 1000*s", false, 1000, 0, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var st bgv1.MailboxStatus
			play(&st, c.countSoft, c.script)
			if got := BouncesWithin(&st, c.n); got != c.want {
				t.Errorf("BouncesWithin(%d) = %d, want %d", c.n, got, c.want)
			}
			if got := SendsWithin(&st, c.n); got != c.wantSends {
				t.Errorf("SendsWithin(%d) = %d, want %d", c.n, got, c.wantSends)
			}
		})
	}
}

func TestLifetimeCounters(t *testing.T) {
	var st bgv1.MailboxStatus
	play(&st, false, "10*s 2*b 3*f")
	if st.Sent != 10 || st.Bounced != 2 || st.SoftBounced != 3 {
		t.Fatalf("sent/bounced/soft = %d/%d/%d, want 10/2/3", st.Sent, st.Bounced, st.SoftBounced)
	}
	var counted bgv1.MailboxStatus
	play(&counted, true, "10*s 2*b 3*f")
	if counted.Bounced != 5 || counted.SoftBounced != 3 {
		t.Fatalf("with countSoft bounced/soft = %d/%d, want 5/3", counted.Bounced, counted.SoftBounced)
	}
}

func TestStartWindowForgetsBouncesButNotCounters(t *testing.T) {
	var st bgv1.MailboxStatus
	play(&st, false, "100*s 5*b")
	StartWindow(&st)
	if got := BouncesWithin(&st, 100); got != 0 {
		t.Fatalf("after StartWindow BouncesWithin = %d, want 0", got)
	}
	if got := SendsWithin(&st, 100); got != 0 {
		t.Fatalf("after StartWindow SendsWithin = %d, want 0", got)
	}
	play(&st, false, "20*s b")
	if BouncesWithin(&st, 100) != 1 || SendsWithin(&st, 100) != 20 || st.Sent != 120 || st.Bounced != 6 {
		t.Fatalf("window %d/%d, lifetime %d/%d", BouncesWithin(&st, 100), SendsWithin(&st, 100), st.Sent, st.Bounced)
	}
}

func TestDuplicatesAreCountedOnce(t *testing.T) {
	var st bgv1.MailboxStatus
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !Apply(&st, Event{ID: "a", Kind: Send, At: at}, false) {
		t.Fatal("first event reported as duplicate")
	}
	if Apply(&st, Event{ID: "a", Kind: Send, At: at.Add(time.Second)}, false) {
		t.Fatal("second event with the same id recorded")
	}
	if st.Sent != 1 || !st.LastEventAt.Time.Equal(at) {
		t.Fatalf("sent %d lastEventAt %v", st.Sent, st.LastEventAt)
	}
}

func TestLedgerStaysBounded(t *testing.T) {
	var st bgv1.MailboxStatus
	for i := range 5000 {
		Apply(&st, Event{ID: fmt.Sprintf("id-%d", i), Kind: Bounce}, false)
	}
	if n := RecentEvents(&st.Ledger); n != MaxEventIDs || len(st.Ledger.BounceMarks) != MaxBounceMarks {
		t.Fatalf("ledger holds %d ids and %d marks", n, len(st.Ledger.BounceMarks))
	}
	if Apply(&st, Event{ID: "id-4999", Kind: Send}, false) {
		t.Fatal("the newest id is not remembered")
	}
	Refresh(&st, 100)
	if st.Window != "20/100" {
		t.Fatalf("window %q: the 20 newest bounces are the window's", st.Window)
	}
}

// A Mailbox written by the previous version (whole ids in eventIDs) keeps recognising its duplicates;
// its ids move into the compact form.
func TestLedgerReadsTheFormerForm(t *testing.T) {
	st := bgv1.MailboxStatus{Sent: 3, Ledger: bgv1.Ledger{EventIDs: []string{"rAAAAAAAAAAAAAAAA", "fBBBBBBBBBBBBBBBB"}}}
	if Apply(&st, Event{ID: "fBBBBBBBBBBBBBBBB", Kind: Send}, false) {
		t.Fatal("a retry of an event recorded in the former form counted again")
	}
	if !Apply(&st, Event{ID: "rCCCCCCCCCCCCCCCC", Kind: Send}, false) || st.Sent != 4 {
		t.Fatal("a new event was not recorded")
	}
	if st.Ledger.EventIDs != nil || RecentEvents(&st.Ledger) != 3 {
		t.Fatalf("ledger %+v", st.Ledger)
	}
	if Apply(&st, Event{ID: "rAAAAAAAAAAAAAAAA", Kind: Send}, false) {
		t.Fatal("the migrated id was forgotten")
	}
}

// SPEC §2: a Mailbox as the API server returns it, without managedFields, stays under 4 KiB of JSON
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
			kind := Send
			if i%9 == 0 {
				kind = Bounce
			}
			Apply(st, Event{ID: fmt.Sprintf("r%022d", i), Kind: kind, At: now.Add(time.Duration(i) * time.Second)}, false)
		}
		Refresh(st, 100)
		st.Health, st.HealthReason = bgv1.HealthPaused, "BounceThreshold"
		st.PauseCount, st.PausedAt, st.ResumeAt, st.LastEventAt = 12, &now, &now, &now
		st.HealthySinceSent, st.ResumeRequest, st.ObservedGeneration = 99999, "2026-11-25 list checked", 3
		var campaigns []int64
		for i := range 20 {
			campaigns = append(campaigns, int64(1234560+i))
		}
		st.Smartlead = bgv1.SmartleadState{AccountID: 12345678, Paused: true, Reason: "BounceThreshold",
			Action: bgv1.PauseActionRemoveFromCampaigns, Suspended: true, RemovedCampaignIDs: campaigns, PausedAt: &now,
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
		st.Conditions = []metav1.Condition{
			{Type: "Paused", Status: "True", Reason: "BounceThreshold", LastTransitionTime: now, ObservedGeneration: 3,
				Message: "5 bounces in the last 100 sends (pause at 5/100); cooldown until 2026-12-03T19:04:05Z"},
			{Type: "Ready", Status: "True", Reason: "Ready", Message: "governed by ProtectionPolicy default",
				LastTransitionTime: now, ObservedGeneration: 3},
		}
		return mb
	}
	drifted := worst()
	drifted.Status.Account.Suspended, drifted.Status.Account.BackInCampaigns = false, 20
	drifted.Status.Smartlead.Reapplied = true
	drifted.Status.Conditions = append(drifted.Status.Conditions, metav1.Condition{Type: "Drifted", Status: "True",
		Reason: "Reapplied", LastTransitionTime: now, ObservedGeneration: 3,
		Message: "Smartlead shows account 12345678 sending again: back in 20 campaigns; paused again (once per pause)"})
	// The one known corner over 4 KiB (README, "How big a Mailbox is"): drift shown on a pause of 20
	// campaigns, until the states agree again, by some 150 bytes. It is held to 4.5 KiB.
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
			RecentEvents(&mb.Status.Ledger), len(mb.Status.Ledger.BounceMarks), len(history))
	}
}

// The de-duplication horizon (SPEC §4): at up to 100 events per mailbox per hour, a retry of any event
// delivered in the last 2 hours is recognised, wherever in that stream it falls.
func TestRetriesWithinTheHorizonCountOnce(t *testing.T) {
	const perHour, hours = 100, 2
	var st bgv1.MailboxStatus
	start := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	ids := make([]string, 0, perHour*hours)
	for i := range perHour * hours {
		id := fmt.Sprintf("r%016x", uint64(i)*0x9e3779b97f4a7c15)
		kind := Send
		if i%7 == 3 {
			kind = Bounce
		}
		if !Apply(&st, Event{ID: id, Kind: kind, At: start.Add(time.Duration(i) * time.Hour / perHour)}, false) {
			t.Fatalf("event %d reported as a duplicate", i)
		}
		ids = append(ids, id)
	}
	sent, bounced := st.Sent, st.Bounced
	for i, id := range ids { // Smartlead retries after 1, 5 and 30 minutes; here every one of them, late
		if Apply(&st, Event{ID: id, Kind: Send}, false) {
			t.Fatalf("retry of event %d (%s before the last) counted twice", i, time.Duration(len(ids)-i)*time.Hour/perHour)
		}
	}
	if st.Sent != sent || st.Bounced != bounced {
		t.Fatalf("retries changed the tally: sent %d→%d bounced %d→%d", sent, st.Sent, bounced, st.Bounced)
	}
}

func TestRefresh(t *testing.T) {
	var st bgv1.MailboxStatus
	play(&st, false, "150*s 4*b 20*s")
	Refresh(&st, 100)
	if st.Window != "4/100" || st.WindowSends != 100 || st.WindowBounces != 4 {
		t.Fatalf("got %q sends %d bounces %d", st.Window, st.WindowSends, st.WindowBounces)
	}
}

// A Mailbox written by the version before (40-bit digests in base64, in recent) keeps recognising its
// duplicates: the digests move into seen, in order, and the oldest still fall out first.
func TestLedgerReadsTheRecentForm(t *testing.T) {
	var recent []byte
	for i := range 210 {
		sum := sha256.Sum256(fmt.Appendf(nil, "old-%d", i))
		recent = append(recent, sum[:5]...)
	}
	st := bgv1.MailboxStatus{Sent: 210, Ledger: bgv1.Ledger{Recent: base64.StdEncoding.EncodeToString(recent)}}
	if Apply(&st, Event{ID: "old-209", Kind: Send}, false) || Apply(&st, Event{ID: "old-10", Kind: Send}, false) {
		t.Fatal("a retry of an event recorded in the recent form counted again")
	}
	if !Apply(&st, Event{ID: "old-9", Kind: Send}, false) {
		t.Fatal("an id older than the 200 kept was still remembered (the oldest must fall out first)")
	}
	if st.Ledger.Recent != "" || RecentEvents(&st.Ledger) != MaxEventIDs || len(st.Ledger.Seen) != MaxEventIDs*5 {
		t.Fatalf("ledger: recent %d chars, seen %d chars", len(st.Ledger.Recent), len(st.Ledger.Seen))
	}
	if strings.ContainsAny(st.Ledger.Seen, "\"\\<>&") {
		t.Fatal("digests hold characters JSON escapes")
	}
}

// Coverage counts (SPEC §7): the sends of the last send's UTC day and of the day before, late events
// included, so that the sync can compare them with Smartlead's daily_sent_count in any time zone.
func TestSendsSinceYesterday(t *testing.T) {
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var st bgv1.MailboxStatus
	send := func(at time.Time) { Apply(&st, Event{ID: fmt.Sprint(st.Sent, at), Kind: Send, At: at}, false) }
	for range 7 {
		send(day.Add(-2 * time.Hour)) // Dec 1st
	}
	for range 5 {
		send(day.Add(3 * time.Hour)) // Dec 2nd
	}
	send(day.Add(-20 * time.Hour))                                              // a late send of Dec 1st
	send(day.Add(-30 * time.Hour))                                              // a late send of Nov 30th: too old to count
	Apply(&st, Event{ID: "b", Kind: Bounce, At: day.Add(4 * time.Hour)}, false) // bounces are not sends
	cases := []struct {
		now  time.Time
		want int32
	}{
		{day.Add(5 * time.Hour), 13},
		{day.Add(23 * time.Hour), 13},
		{day.Add(25 * time.Hour), 5},  // Dec 3rd: Dec 2nd is yesterday
		{day.Add(49 * time.Hour), 0},  // Dec 4th
		{day.Add(-1 * time.Hour), 13}, // a clock behind the events' never goes below what was received
	}
	for _, c := range cases {
		if got := SendsSinceYesterday(&st.Ledger, c.now); got != c.want {
			t.Errorf("at %s: %d sends since yesterday, want %d", c.now, got, c.want)
		}
	}
	send(day.Add(26 * time.Hour)) // the first send of Dec 3rd moves the days on
	if st.Ledger.SendsToday != 1 || st.Ledger.SendsYesterday != 5 {
		t.Fatalf("today %d, yesterday %d", st.Ledger.SendsToday, st.Ledger.SendsYesterday)
	}
}
