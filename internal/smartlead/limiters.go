package smartlead

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Smartlead's Standard plan allows 60 requests a minute per API key, with a burst of 10 (Pro: 120).
const (
	// DefaultRequestsPerMinute is the sustained request rate allowed per API key.
	DefaultRequestsPerMinute = 60
	// DefaultLimit is DefaultRequestsPerMinute as a rate.
	DefaultLimit = rate.Limit(DefaultRequestsPerMinute / 60.0)
	// DefaultBurst is how many requests may go at once per API key.
	DefaultBurst = 10
)

// Priority is how urgent a Smartlead call is. A key's limiter serves its waiting calls highest priority
// first, and in arrival order within a priority: a domain cascade's pauses never queue behind a sync's pages.
type Priority int

const (
	// PrioritySync is the account sync's reads: they wait for every other call of the key.
	PrioritySync Priority = iota
	// PriorityReapply is a drift reapply: the sync found a paused account sending again.
	PriorityReapply
	// PriorityEnforce is a pause or a resume, and any call whose context names no priority.
	PriorityEnforce
)

type priorityKey struct{}

// WithPriority returns a context whose Smartlead calls wait with priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf is the priority of ctx's Smartlead calls: PriorityEnforce unless WithPriority says otherwise,
// so that no call is starved by being forgotten.
func PriorityOf(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return PriorityEnforce
}

// RateLimit is a request budget: a sustained rate per minute and a burst.
type RateLimit struct {
	// RequestsPerMinute is the sustained rate; 0 means DefaultRequestsPerMinute.
	RequestsPerMinute int
	// Burst is how many requests may go at once; 0 means DefaultBurst.
	Burst int
}

func (r RateLimit) orDefault() RateLimit {
	if r.RequestsPerMinute <= 0 {
		r.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if r.Burst <= 0 {
		r.Burst = DefaultBurst
	}
	return r
}

// lowest is the stricter of two budgets, rate and burst each.
func (r RateLimit) lowest(o RateLimit) RateLimit {
	return RateLimit{RequestsPerMinute: min(r.RequestsPerMinute, o.RequestsPerMinute), Burst: min(r.Burst, o.Burst)}
}

// idler is what sweepIdle lets go: a key's limiter or account directory.
type idler interface {
	idle(now time.Time, d time.Duration) bool
}

// sweepIdle deletes from m, at most once a minute (or once per idle period when that is shorter), the
// entries idle for idle, except the one of the key being asked for; *last is when it last swept.
func sweepIdle[V idler](m map[[sha256.Size]byte]V, keep [sha256.Size]byte, now time.Time, last *time.Time, idle time.Duration) {
	if now.Sub(*last) < min(idle, time.Minute) {
		return
	}
	*last = now
	for key, v := range m {
		if key != keep && v.idle(now, idle) {
			delete(m, key)
		}
	}
}

// DefaultIdleRelease is how long a key's limiter must go unused, with no call waiting and no Retry-After
// pause pending, before Limiters lets it go (a rotated key's limiter does not stay for ever).
const DefaultIdleRelease = 15 * time.Minute

// Limiters hands out one rate limiter per API key, so that every mailbox and policy using the same key
// shares one budget. The budget of a key is the lowest that any policy using it states (Configure), rate
// and burst each: several policies sharing a key share one budget, the strictest. Keys are held only as
// SHA-256 digests. A limiter idle for IdleRelease is let go (a new one is made on the next call), and a
// policy's stated budget when the policy is forgotten (Forget). The zero value uses the defaults.
type Limiters struct {
	// Limit and Burst configure new limiters of keys no policy states a budget for; zero means DefaultLimit
	// and DefaultBurst.
	Limit rate.Limit
	Burst int
	// IdleRelease is how long an unused limiter is kept; 0 means DefaultIdleRelease.
	IdleRelease time.Duration

	mu sync.Mutex
	m  map[[sha256.Size]byte]*Limiter
	// stated holds each owner's (a policy's) key and budget.
	stated    map[string]statedBudget
	lastSweep time.Time
}

type statedBudget struct {
	key    [sha256.Size]byte
	budget RateLimit
}

// Limiter spaces the requests of one API key: a token bucket (golang.org/x/time/rate) whose tokens go to
// the waiting calls by priority, then arrival; and a pause that a 429's Retry-After puts on every client
// of the key at once (not only on the call that got it).
type Limiter struct {
	mu        sync.Mutex
	bucket    *rate.Limiter
	notBefore time.Time
	waiters   waiterHeap
	seq       uint64
	lastUsed  time.Time
	// onGrant, when set (tests), is told each grant, in order, under mu.
	onGrant func(Priority)
}

// NewLimiter returns a limiter of limit requests per second with the given burst.
func NewLimiter(limit rate.Limit, burst int) *Limiter {
	return &Limiter{bucket: rate.NewLimiter(limit, max(burst, 1)), lastUsed: time.Now()}
}

// newBudgetLimiter returns a limiter of a per-minute budget.
func newBudgetLimiter(b RateLimit) *Limiter {
	return NewLimiter(rate.Limit(float64(b.RequestsPerMinute)/60), b.Burst)
}

// waiter is one call waiting for a token.
type waiter struct {
	prio  Priority
	seq   uint64
	wake  chan struct{}
	index int
}

// waiterHeap orders waiters highest priority first, then first come.
type waiterHeap []*waiter

func (h waiterHeap) Len() int { return len(h) }
func (h waiterHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waiterHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}

// Wait blocks until the key's Retry-After pause, if any, has passed and a token is free for this call, or
// ctx ends. Only the most urgent waiting call (PriorityOf(ctx), then arrival) takes the next token.
func (l *Limiter) Wait(ctx context.Context) error {
	w := &waiter{prio: PriorityOf(ctx), wake: make(chan struct{}, 1)}
	l.mu.Lock()
	l.seq++
	w.seq = l.seq
	heap.Push(&l.waiters, w)
	l.mu.Unlock()
	for {
		wait, granted := l.turn(w)
		if granted {
			return nil
		}
		if err := w.sleep(ctx, wait); err != nil {
			l.mu.Lock()
			if w.index >= 0 {
				heap.Remove(&l.waiters, w.index)
				w.index = -1
			}
			l.wakeHead()
			l.mu.Unlock()
			return err
		}
	}
}

// sleep waits for d (d < 0: until woken), for a wake-up, or until ctx ends.
func (w *waiter) sleep(ctx context.Context, d time.Duration) error {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer:
	case <-w.wake:
	}
	return nil
}

// turn gives w the next token when it is w's turn and a token is free; otherwise it says how long to wait
// (-1: until woken, it is not w's turn).
func (l *Limiter) turn(w *waiter) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch {
	case l.waiters[0] != w:
		return -1, false
	case now.Before(l.notBefore):
		return l.notBefore.Sub(now), false
	case l.bucket.AllowN(now, 1):
		heap.Remove(&l.waiters, w.index)
		w.index = -1
		l.lastUsed = now
		if l.onGrant != nil {
			l.onGrant(w.prio)
		}
		l.wakeHead()
		return 0, true
	}
	missing := 1 - l.bucket.TokensAt(now)
	wait := time.Duration(math.Ceil(missing / float64(l.bucket.Limit()) * float64(time.Second)))
	return max(wait, time.Millisecond), false
}

// wakeHead tells the most urgent waiter that it is its turn; l.mu is held.
func (l *Limiter) wakeHead() {
	if len(l.waiters) > 0 {
		select {
		case l.waiters[0].wake <- struct{}{}:
		default:
		}
	}
}

// Hold pauses every request of the key for d (Smartlead answered 429 with Retry-After: d).
func (l *Limiter) Hold(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := time.Now().Add(d); until.After(l.notBefore) {
		l.notBefore = until
	}
}

// HeldUntil is when the key's current Retry-After pause ends; zero or past when there is none.
func (l *Limiter) HeldUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notBefore
}

// Waiting is how many calls wait for a token.
func (l *Limiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters)
}

// Budget is the limiter's current rate, per minute, and burst.
func (l *Limiter) Budget() RateLimit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return RateLimit{RequestsPerMinute: int(math.Round(float64(l.bucket.Limit()) * 60)), Burst: l.bucket.Burst()}
}

// set changes the limiter's budget; the waiting calls see it at once.
func (l *Limiter) set(b RateLimit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := rate.Limit(float64(b.RequestsPerMinute) / 60)
	if l.bucket.Limit() != limit || l.bucket.Burst() != b.Burst {
		now := time.Now()
		l.bucket.SetLimitAt(now, limit)
		l.bucket.SetBurstAt(now, b.Burst)
		l.wakeHead()
	}
}

// idle reports whether the limiter has gone unused for d with nothing waiting and no pause pending.
func (l *Limiter) idle(now time.Time, d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiters) == 0 && !now.Before(l.notBefore) && now.Sub(l.lastUsed) >= d
}

// digest is how a key is held: never the key itself.
func digest(apiKey string) [sha256.Size]byte { return sha256.Sum256([]byte(apiKey)) }

// For returns the limiter shared by every client of apiKey.
func (l *Limiters) For(apiKey string) *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limiter(digest(apiKey))
}

// Configure records the budget that owner (a policy) states for apiKey, replacing what it stated before
// (for this key or another), and returns the key's limiter, set to the lowest budget any owner states.
func (l *Limiters) Configure(apiKey, owner string, budget RateLimit) *Limiter {
	k := digest(apiKey)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stated == nil {
		l.stated = map[string]statedBudget{}
	}
	old, had := l.stated[owner]
	l.stated[owner] = statedBudget{key: k, budget: budget.orDefault()}
	lim := l.limiter(k)
	lim.set(l.budget(k))
	if had && old.key != k {
		l.restate(old.key)
	}
	return lim
}

// Forget drops what owner stated (the policy is gone): its key's budget is the lowest of the others again.
func (l *Limiters) Forget(owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.stated[owner]; ok {
		delete(l.stated, owner)
		l.restate(old.key)
	}
}

// Len is how many limiters are held.
func (l *Limiters) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// restate sets a key's limiter, if held, to the budget its owners state now; l.mu is held.
func (l *Limiters) restate(k [sha256.Size]byte) {
	if lim := l.m[k]; lim != nil {
		lim.set(l.budget(k))
	}
}

// budget is the lowest budget the owners of k state, or the defaults when none does; l.mu is held.
func (l *Limiters) budget(k [sha256.Size]byte) RateLimit {
	var b RateLimit
	found := false
	for _, s := range l.stated {
		if s.key != k {
			continue
		}
		if !found {
			b, found = s.budget, true
		} else {
			b = b.lowest(s.budget)
		}
	}
	if !found {
		return l.defaults()
	}
	return b
}

// defaults is the budget of a key no owner states one for; l.mu is held.
func (l *Limiters) defaults() RateLimit {
	b := RateLimit{Burst: l.Burst}
	if l.Limit != 0 {
		b.RequestsPerMinute = int(math.Min(float64(l.Limit)*60, math.MaxInt32))
	}
	return b.orDefault()
}

// limiter returns k's limiter, making it when there is none, and lets idle ones go (at most once a
// minute); l.mu is held.
func (l *Limiters) limiter(k [sha256.Size]byte) *Limiter {
	now := time.Now()
	if l.m == nil {
		l.m = map[[sha256.Size]byte]*Limiter{}
	}
	sweepIdle(l.m, k, now, &l.lastSweep, orDefault(l.IdleRelease, DefaultIdleRelease))
	lim := l.m[k]
	if lim == nil {
		if l.Limit == rate.Inf {
			lim = NewLimiter(rate.Inf, max(l.Burst, 1))
		} else {
			lim = newBudgetLimiter(l.budget(k))
		}
		l.m[k] = lim
	}
	return lim
}
