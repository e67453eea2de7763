package smartlead

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Account is one email account of the organization, as listed by GET /email-accounts/.
type Account struct {
	// ID is the email account's id.
	ID int64 `json:"id"`
	// FromEmail is the address it sends as.
	FromEmail string `json:"from_email"`
	// MessagePerDay is its daily sending limit.
	MessagePerDay int32 `json:"message_per_day"`
	// DailySentCount is how many emails it has sent today.
	DailySentCount int32 `json:"daily_sent_count"`
	// Suspended is true while it may not send.
	Suspended bool `json:"is_suspended"`
	// SMTPOK and IMAPOK say whether Smartlead's last SMTP and IMAP connection tests passed.
	SMTPOK bool `json:"is_smtp_success"`
	IMAPOK bool `json:"is_imap_success"`
	// Warmup is its warm-up, as Smartlead nests it.
	Warmup *Warmup `json:"warmup_details"`
}

// Warmup is an account's warm-up settings (warmup_details).
type Warmup struct {
	// Status is ACTIVE while the account warms up.
	Status string `json:"status"`
}

// WarmupEnabled reports whether the account's warm-up is running.
func (a *Account) WarmupEnabled() bool {
	return a.Warmup != nil && strings.EqualFold(a.Warmup.Status, "ACTIVE")
}

// NormalEmail is an address as accounts are matched by it: trimmed and lowercased, as a Mailbox's
// spec.email holds it.
func NormalEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// DefaultMinRefresh is how long an account list is trusted for a lookup that misses before it is read again.
const DefaultMinRefresh = 30 * time.Second

// DefaultMaxAge is how long an account list is trusted for a lookup that finds its address: an account
// deleted and re-created in Smartlead under a new id is found within it (or at the next sync).
const DefaultMaxAge = 10 * time.Minute

// Directories hands out one AccountDirectory per API key and base URL, so that every mailbox of an
// organization is resolved from one account list instead of a paging pass each. Keys are held only as
// SHA-256 digests. A directory unused for IdleRelease is let go (a rotated key's list does not stay for
// ever). The zero value is ready to use.
type Directories struct {
	// MinRefresh is how old a list must be before a missed lookup reads it again; 0 means DefaultMinRefresh,
	// negative means always.
	MinRefresh time.Duration
	// MaxAge is how old a list may be for a lookup that finds its address; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// IdleRelease is how long an unused directory is kept; 0 means DefaultIdleRelease.
	IdleRelease time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu        sync.Mutex
	m         map[[sha256.Size]byte]*AccountDirectory
	lastSweep time.Time
}

// For returns the directory shared by every client of apiKey at baseURL.
func (d *Directories) For(baseURL, apiKey string) *AccountDirectory {
	k := sha256.Sum256([]byte(strings.TrimRight(baseURL, "/") + "\x00" + apiKey))
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[[sha256.Size]byte]*AccountDirectory{}
	}
	sweepIdle(d.m, k, now, &d.lastSweep, orDefault(d.IdleRelease, DefaultIdleRelease))
	dir := d.m[k]
	if dir == nil {
		dir = &AccountDirectory{minRefresh: d.MinRefresh, maxAge: orDefault(d.MaxAge, DefaultMaxAge), now: d.now}
		if dir.minRefresh == 0 {
			dir.minRefresh = DefaultMinRefresh
		}
		d.m[k] = dir
	}
	dir.used(now)
	return dir
}

// Len is how many directories are held.
func (d *Directories) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

func (d *Directories) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// AccountDirectory is one organization's email accounts by address, read with one paging pass and read
// again when a lookup misses and the list is older than the minimum refresh, or when the list is older
// than its maximum age; every complete listing of the key (the account sync's) refreshes it too. A fleet
// that needs its account ids costs one list, whatever its size; a new account is found within MinRefresh,
// and an account re-created under a new id within MaxAge.
type AccountDirectory struct {
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time

	mu      sync.Mutex // held while listing: concurrent lookups wait for one list instead of making their own
	byEmail map[string]int64
	fetched time.Time
	// lastUsed is when the directory was last handed out, in Unix nanoseconds (not under mu: a listing
	// in progress must not hold up handing it out).
	lastUsed atomic.Int64
}

// Find returns the id of the account that sends as email, listing the accounts with list when it does
// not know the address and its list is old enough, or when its list is older than the maximum age (when
// that read fails, the id it holds is returned). found is false when Smartlead has no such account.
func (d *AccountDirectory) Find(ctx context.Context, email string, list func(context.Context) ([]Account, error)) (id int64, found bool, err error) {
	email = NormalEmail(email)
	d.mu.Lock()
	defer d.mu.Unlock()
	age := d.now().Sub(d.fetched)
	held, known := d.byEmail[email]
	if known && age < d.maxAge {
		return held, true, nil
	}
	if !known && d.byEmail != nil && age < d.minRefresh {
		return 0, false, nil
	}
	if _, err := d.load(ctx, list); err != nil {
		if known {
			return held, true, nil // the list cannot be read again now: the id held is the best there is
		}
		return 0, false, err
	}
	id, ok := d.byEmail[email]
	return id, ok, nil
}

// Refresh reads the account list now and returns it.
func (d *AccountDirectory) Refresh(ctx context.Context, list func(context.Context) ([]Account, error)) ([]Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.load(ctx, list)
}

// Store replaces the list with a complete listing read elsewhere (the account sync's).
func (d *AccountDirectory) Store(accounts []Account) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keep(accounts)
}

// load lists the accounts and keeps them by address; d.mu is held.
func (d *AccountDirectory) load(ctx context.Context, list func(context.Context) ([]Account, error)) ([]Account, error) {
	accounts, err := list(ctx)
	if err != nil {
		return nil, err
	}
	d.keep(accounts)
	return accounts, nil
}

// keep holds a complete listing by address; d.mu is held.
func (d *AccountDirectory) keep(accounts []Account) {
	d.byEmail = make(map[string]int64, len(accounts))
	for _, a := range accounts {
		d.byEmail[NormalEmail(a.FromEmail)] = a.ID
	}
	d.fetched = d.now()
}

func (d *AccountDirectory) used(now time.Time) { d.lastUsed.Store(now.UnixNano()) }

// idle reports whether the directory has gone unused for d. A directory in the middle of a listing holds
// its lock and counts as in use.
func (d *AccountDirectory) idle(now time.Time, idle time.Duration) bool {
	if !d.mu.TryLock() {
		return false
	}
	defer d.mu.Unlock()
	return now.Sub(time.Unix(0, d.lastUsed.Load())) >= idle
}
