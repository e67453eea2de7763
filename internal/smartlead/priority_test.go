package smartlead_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bounceguard/bounceguard/internal/smartlead"
)

// cascade is a domain cascade during an account sync on one API key: an organization of `accounts`
// accounts is being listed (PrioritySync, or unmarked when byUrgency is false: the FIFO baseline) when
// `pauses` of its mailboxes are suspended by two workers, as the per-key Smartlead queue runs them.
type cascade struct {
	// between is how many list pages went out between the first and the last Suspend.
	between int
	// took is from the first Suspend's start to the last Suspend's answer.
	took time.Duration
	// pagesBefore is how many pages the sync had read when the cascade began.
	pagesBefore int
}

func runCascade(tb testing.TB, lim *smartlead.Limiter, accounts, pauses int, byUrgency bool) cascade {
	tb.Helper()
	sl, base := newStandin(tb)
	ids := make([]int64, accounts)
	for i := range ids {
		ids[i] = sl.AddAccount(fmt.Sprintf("sdr%04d@domain%02d.outreach-acme.com", i, i%40))
	}
	c, err := smartlead.New(base, apiKey, smartlead.Options{Limiter: lim, Backoff: 5 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	syncCtx := context.Background()
	if byUrgency {
		syncCtx = smartlead.WithPriority(syncCtx, smartlead.PrioritySync)
	}
	synced := make(chan error, 1)
	go func() {
		_, err := c.ListAccounts(syncCtx)
		synced <- err
	}()
	// The cascade begins once the sync is under way.
	pagesBefore := 0
	for pagesBefore < 5 {
		pagesBefore = len(sl.CallStrings("GET"))
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	jobs := make(chan int64, pauses)
	for _, id := range ids[:pauses] {
		jobs <- id
	}
	close(jobs)
	var wg sync.WaitGroup
	errs := make(chan error, pauses)
	pauseCtx := smartlead.WithPriority(context.Background(), smartlead.PriorityEnforce)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if err := c.Suspend(pauseCtx, id); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	if err := <-synced; err != nil {
		tb.Fatal(err)
	}
	calls := sl.Calls()
	first, last := -1, -1
	for i, call := range calls {
		if call.Method == "PUT" {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	between := 0
	for _, call := range calls[first:last] {
		if call.Method == "GET" {
			between++
		}
	}
	return cascade{between: between, took: took, pagesBefore: pagesBefore}
}

// A domain cascade is never queued behind a sync's pages: 50 mailboxes of a domain are suspended, by the
// key's two queue workers, while a sync of 5,000 accounts (50 pages) reads on the same key; from the first
// Suspend to the last, at most the one page already let through when the cascade began goes out. What is
// asserted is the order of the calls, not their speed.
func TestCascadeGoesBeforeTheSyncPages(t *testing.T) {
	got := runCascade(t, smartlead.NewLimiter(rate.Every(50*time.Millisecond), 1), 5000, 50, true)
	if got.between > 1 {
		t.Fatalf("%d sync pages went out between the first and the last of the 50 Suspends (the sync had read %d before)",
			got.between, got.pagesBefore)
	}
}

// BenchmarkCascadeDuringSync measures a 50-mailbox domain cascade (two queue workers suspending) while a
// 5,000-account sync (50 pages) reads on the same key, at Smartlead's Standard budget sped up 20 times
// (20 requests a second, burst 10: the proportions of 60 a minute, burst 10, in a twentieth of the time).
// by-urgency is the limiter as it runs; fifo, the baseline of the same run, marks the sync's reads as
// urgent as the pauses, i.e. first come, first served. Reported: the sync pages that went out between the
// first and the last Suspend, and the cascade's duration.
func BenchmarkCascadeDuringSync(b *testing.B) {
	for _, mode := range []struct {
		name      string
		byUrgency bool
	}{{"fifo", false}, {"by-urgency", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var between, took float64
			n := 0
			for b.Loop() {
				got := runCascade(b, smartlead.NewLimiter(20, 10), 5000, 50, mode.byUrgency)
				between += float64(got.between)
				took += float64(got.took.Milliseconds())
				n++
			}
			b.ReportMetric(between/float64(n), "sync-pages-during-cascade")
			b.ReportMetric(took/float64(n), "cascade-ms")
		})
	}
}
