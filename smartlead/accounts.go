package smartlead

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
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

// Directories hands out one AccountDirectory per API key and base URL, so that every mailbox of an
// organization is resolved from one account list instead of a paging pass each. Keys are held only as
// SHA-256 digests. The zero value is ready to use.
type Directories struct {
	// MinRefresh is how old a list must be before a missed lookup reads it again; 0 means DefaultMinRefresh,
	// negative means always.
	MinRefresh time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*AccountDirectory
}

// For returns the directory shared by every client of apiKey at baseURL.
func (d *Directories) For(baseURL, apiKey string) *AccountDirectory {
	k := sha256.Sum256([]byte(strings.TrimRight(baseURL, "/") + "\x00" + apiKey))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[[sha256.Size]byte]*AccountDirectory{}
	}
	dir := d.m[k]
	if dir == nil {
		dir = &AccountDirectory{minRefresh: d.MinRefresh, now: d.Now}
		if dir.minRefresh == 0 {
			dir.minRefresh = DefaultMinRefresh
		}
		if dir.now == nil {
			dir.now = time.Now
		}
		d.m[k] = dir
	}
	return dir
}

// AccountDirectory is one organization's email accounts by address, read with one paging pass and read
// again only when a lookup misses and the list is older than the minimum refresh: a fleet that needs
// its account ids costs one list, whatever its size, and a new account is found within MinRefresh.
type AccountDirectory struct {
	minRefresh time.Duration
	now        func() time.Time

	mu      sync.Mutex // held while listing: concurrent lookups wait for one list instead of making their own
	byEmail map[string]int64
	fetched time.Time
}

// Find returns the id of the account that sends as email, listing the accounts with list when it does
// not know the address and its list is old enough. found is false when Smartlead has no such account.
func (d *AccountDirectory) Find(ctx context.Context, email string, list func(context.Context) ([]Account, error)) (id int64, found bool, err error) {
	email = NormalEmail(email)
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.byEmail[email]; ok {
		return id, true, nil
	}
	if d.byEmail != nil && d.now().Sub(d.fetched) < d.minRefresh {
		return 0, false, nil
	}
	if _, err := d.load(ctx, list); err != nil {
		return 0, false, err
	}
	id, ok := d.byEmail[email]
	return id, ok, nil
}

// Refresh reads the account list now (the account sync's periodic pass) and returns it.
func (d *AccountDirectory) Refresh(ctx context.Context, list func(context.Context) ([]Account, error)) ([]Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.load(ctx, list)
}

// load lists the accounts and keeps them by address; d.mu is held.
func (d *AccountDirectory) load(ctx context.Context, list func(context.Context) ([]Account, error)) ([]Account, error) {
	accounts, err := list(ctx)
	if err != nil {
		return nil, err
	}
	d.byEmail = make(map[string]int64, len(accounts))
	for _, a := range accounts {
		d.byEmail[NormalEmail(a.FromEmail)] = a.ID
	}
	d.fetched = d.now()
	return accounts, nil
}
