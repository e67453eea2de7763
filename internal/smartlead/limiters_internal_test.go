package smartlead

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Waiting calls take the key's tokens by urgency, then arrival: pauses and resumes, then drift reapplies,
// then sync reads, whatever order they came in. The order of the grants is asserted, not their timing.
func TestLimiterServesByUrgencyThenArrival(t *testing.T) {
	l := NewLimiter(rate.Inf, 1)
	var order []Priority
	l.onGrant = func(p Priority) { order = append(order, p) }
	l.Hold(time.Hour) // nothing is granted until every call waits
	arrivals := []Priority{PrioritySync, PrioritySync, PriorityReapply, PriorityEnforce, PrioritySync, PriorityEnforce, PriorityReapply}
	done := make(chan error, len(arrivals))
	for i, p := range arrivals {
		go func() { done <- l.Wait(WithPriority(context.Background(), p)) }()
		for l.Waiting() != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	unmarked := make(chan error, 1)
	go func() { unmarked <- l.Wait(context.Background()) }() // no priority named: treated as a pause
	for l.Waiting() != len(arrivals)+1 {
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	l.notBefore = time.Time{}
	l.wakeHead()
	l.mu.Unlock()
	for range arrivals {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-unmarked; err != nil {
		t.Fatal(err)
	}
	want := []Priority{PriorityEnforce, PriorityEnforce, PriorityEnforce, PriorityReapply, PriorityReapply, PrioritySync, PrioritySync, PrioritySync}
	if len(order) != len(want) {
		t.Fatalf("grants %v", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("grants in order %v, want %v", order, want)
		}
	}
}

// A call whose context ends while it waits leaves the line, and the next in line is served.
func TestLimiterWaiterThatGivesUpLeavesTheLine(t *testing.T) {
	l := NewLimiter(rate.Inf, 1)
	l.Hold(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- l.Wait(ctx) }()
	for l.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	next := make(chan error, 1)
	go func() { next <- l.Wait(WithPriority(context.Background(), PrioritySync)) }()
	for l.Waiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("a cancelled wait returned no error")
	}
	l.mu.Lock()
	l.notBefore = time.Time{}
	l.wakeHead()
	l.mu.Unlock()
	if err := <-next; err != nil || l.Waiting() != 0 {
		t.Fatalf("the next call: %v, %d still waiting", err, l.Waiting())
	}
}

// One budget per key: the lowest that any policy sharing the key states, rate and burst each; a policy
// that changes its key or is forgotten no longer lowers it; a key no policy states a budget for has
// Smartlead's Standard plan (60 a minute, burst 10).
func TestLimitersLowestBudgetWins(t *testing.T) {
	var l Limiters
	if b := l.For("sk-standard").Budget(); b != (RateLimit{60, 10}) {
		t.Fatalf("default budget %+v", b)
	}
	pro := l.Configure("sk-shared", "acme/pro", RateLimit{120, 20})
	if b := pro.Budget(); b != (RateLimit{120, 20}) {
		t.Fatalf("one policy: %+v", b)
	}
	std := l.Configure("sk-shared", "acme/trial", RateLimit{60, 30})
	if std != pro {
		t.Fatal("two policies sharing a key got two limiters")
	}
	if b := pro.Budget(); b != (RateLimit{60, 20}) {
		t.Fatalf("two policies: %+v, want the lowest rate and the lowest burst", b)
	}
	l.Configure("sk-other", "acme/trial", RateLimit{60, 30}) // the trial moves to another key
	if b := pro.Budget(); b != (RateLimit{120, 20}) {
		t.Fatalf("after the trial moved away: %+v", b)
	}
	l.Configure("sk-shared", "acme/trial", RateLimit{30, 5})
	l.Forget("acme/trial")
	if b := pro.Budget(); b != (RateLimit{120, 20}) {
		t.Fatalf("after the trial was deleted: %+v", b)
	}
	l.Forget("acme/pro")
	if b := pro.Budget(); b != (RateLimit{60, 10}) {
		t.Fatalf("no policy left: %+v, want the defaults", b)
	}
}

// A rotated key's limiter does not stay for ever: once idle (nothing waiting, no Retry-After pause
// pending, unused for IdleRelease) it is let go; one in use, held or waited on stays.
func TestLimitersReleaseIdleKeys(t *testing.T) {
	l := Limiters{IdleRelease: time.Minute}
	old, held, busy := l.For("sk-rotated-away"), l.For("sk-held"), l.For("sk-busy")
	held.Hold(time.Hour)
	busy.Hold(time.Hour)
	waiting := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { waiting <- busy.Wait(ctx) }()
	for busy.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	busy.mu.Lock()
	busy.notBefore = time.Time{} // no pause, but a call still waits (the hour-long token wait below)
	busy.bucket = rate.NewLimiter(rate.Every(time.Hour), 1)
	busy.bucket.Allow()
	busy.mu.Unlock()
	for _, lim := range []*Limiter{old, held, busy} {
		lim.mu.Lock()
		lim.lastUsed = time.Now().Add(-2 * time.Minute)
		lim.mu.Unlock()
	}
	l.mu.Lock()
	l.lastSweep = time.Time{}
	l.mu.Unlock()
	l.For("sk-current")
	if n := l.Len(); n != 3 {
		t.Fatalf("%d limiters held, want 3 (held, busy, current)", n)
	}
	if l.For("sk-held") != held || l.For("sk-busy") != busy || l.For("sk-rotated-away") == old {
		t.Fatal("the wrong limiter was let go")
	}
	cancel()
	<-waiting
}
