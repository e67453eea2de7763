package smartlead

import (
	"crypto/sha256"
	"sync"

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
	m  map[[sha256.Size]byte]*rate.Limiter
}

// For returns the limiter shared by every client of apiKey.
func (l *Limiters) For(apiKey string) *rate.Limiter {
	k := sha256.Sum256([]byte(apiKey))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[[sha256.Size]byte]*rate.Limiter{}
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
		lim = rate.NewLimiter(limit, burst)
		l.m[k] = lim
	}
	return lim
}
