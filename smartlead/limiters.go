package smartlead

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Smartlead's documented rate limit: 10 requests per 2 seconds per API key.
const (
	// DefaultLimit is the sustained request rate allowed per API key.
	DefaultLimit = rate.Limit(10.0 / 2.0)
	// DefaultBurst is how many requests may go at once per API key.
	DefaultBurst = 10
)

// Limiters hands out one rate limiter per API key, so that every mailbox and policy using the same key
// shares Smartlead's limit. Keys are held only as SHA-256 digests. The zero value uses the defaults.
type Limiters struct {
	// Limit and Burst configure new limiters; zero means DefaultLimit and DefaultBurst.
	Limit rate.Limit
	Burst int

	mu sync.Mutex
	m  map[[sha256.Size]byte]*Limiter
}

// Limiter spaces the requests of one API key: a token bucket, and a pause that a 429's Retry-After puts
// on every client of the key at once (not only on the call that got it).
type Limiter struct {
	bucket *rate.Limiter

	mu        sync.Mutex
	notBefore time.Time
}

// NewLimiter returns a limiter of limit requests per second with the given burst.
func NewLimiter(limit rate.Limit, burst int) *Limiter {
	return &Limiter{bucket: rate.NewLimiter(limit, burst)}
}

// Wait blocks until the key's Retry-After pause, if any, has passed and a token is free, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		wait := time.Until(l.notBefore)
		l.mu.Unlock()
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return l.bucket.Wait(ctx)
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

// For returns the limiter shared by every client of apiKey.
func (l *Limiters) For(apiKey string) *Limiter {
	k := sha256.Sum256([]byte(apiKey))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[[sha256.Size]byte]*Limiter{}
	}
	lim := l.m[k]
	if lim == nil {
		limit, burst := l.Limit, l.Burst
		if limit == 0 {
			limit = DefaultLimit
		}
		if burst == 0 {
			burst = DefaultBurst
		}
		lim = NewLimiter(limit, burst)
		l.m[k] = lim
	}
	return lim
}
