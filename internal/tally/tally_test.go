package tally

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

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
		{"100 sends then 5 bounces is 5/100", "100*s 5*b", false, 100, 5, 100},
		{"4 bounces then 100 more sends is 0/100", "100*s 4*b 100*s", false, 100, 0, 100},
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

// The de-duplication horizon (Smartlead retries after 1, 5 and 30 minutes): at up to 100 events per mailbox
// per hour, a retry of any event delivered in the last 2 hours is recognised, wherever in that stream it
// falls.
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

// Coverage counts: the sends of the last send's UTC day and of the day before, late events
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

// An event known by two ids (its payload fingerprint and its request id) is a duplicate when either was
// recorded, whichever came first: a proxy's fresh request id on a retry, or a reused request id on
// another body, both count once; two distinct events with distinct ids both count.
func TestDuplicateByEitherID(t *testing.T) {
	var st bgv1.MailboxStatus
	at := time.Date(2026, 11, 25, 10, 5, 0, 0, time.UTC)
	steps := []struct {
		id, alt string
		new     bool
	}{
		{"fA1b2C3d4E5f6G7h8I9j0K1l", "r-ingress-5f0c1b7e", true},
		{"fA1b2C3d4E5f6G7h8I9j0K1l", "r-ingress-9b8a7c6d", false}, // Smartlead's retry, a new proxy id
		{"fA1b2C3d4E5f6G7h8I9j0K1l", "", false},                   // the same without a proxy
		{"fZ9y8X7w6V5u4T3s2R1q0P9o", "r-ingress-5f0c1b7e", false}, // a seen request id on another body
		{"fZ9y8X7w6V5u4T3s2R1q0P9o", "r-ingress-0a1b2c3d", true},
		{"fM5n6B7v8C9x0Z1a2S3d4F5g", "", true},
	}
	for i, s := range steps {
		if got := Apply(&st, Event{ID: s.id, AltID: s.alt, Kind: Bounce, At: at}, false); got != s.new {
			t.Fatalf("step %d: new=%v, want %v", i, got, s.new)
		}
	}
	if st.Bounced != 3 || RecentEvents(&st.Ledger) != 5 {
		t.Fatalf("bounced %d, %d ids remembered; want 3 and 5", st.Bounced, RecentEvents(&st.Ledger))
	}
}
