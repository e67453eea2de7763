package smartlead_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bounceguard/bounceguard/smartlead"
	"github.com/bounceguard/bounceguard/smartlead/standin"
)

const apiKey = "sk-test/KEY+with&odd=chars"

func newStandin(t *testing.T) (*standin.Server, string) {
	t.Helper()
	s := standin.New(apiKey, "/api/v1")
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/api/v1"
}

func newClient(t *testing.T, base string, opts smartlead.Options) *smartlead.HTTPClient {
	t.Helper()
	if opts.Limiter == nil {
		opts.Limiter = smartlead.NewLimiter(rate.Inf, 1)
	}
	if opts.Backoff == 0 {
		opts.Backoff = 5 * time.Millisecond
	}
	c, err := smartlead.New(base, apiKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOperationsAgainstStandin(t *testing.T) {
	sl, base := newStandin(t)
	var ids []int64
	for i := 0; i < 250; i++ {
		ids = append(ids, sl.AddAccount(fmt.Sprintf("box%03d@acme.com", i)))
	}
	target := ids[217]
	active := sl.AddCampaign("ACTIVE", target, ids[0])
	paused := sl.AddCampaign("PAUSED", target)
	lonely := sl.AddCampaign("ACTIVE", target)
	c := newClient(t, base, smartlead.Options{})
	ctx := context.Background()

	got, err := c.FindAccountID(ctx, "BOX217@acme.com")
	if err != nil || got != target {
		t.Fatalf("FindAccountID = %d, %v; want %d", got, err, target)
	}
	if _, err := c.FindAccountID(ctx, "nobody@acme.com"); !errors.Is(err, smartlead.ErrNotFound) {
		t.Fatalf("FindAccountID(unknown) error = %v, want ErrNotFound", err)
	}
	if want := 3 + 3; len(sl.Calls()) != want { // two lookups over 3 pages each
		t.Fatalf("lookups made %d calls, want %d: %v", len(sl.Calls()), want, sl.CallStrings())
	}

	if err := c.Suspend(ctx, target); err != nil {
		t.Fatal(err)
	}
	if a, _ := sl.Account(target); !a.Suspended {
		t.Fatal("account not suspended")
	}
	if err := c.Unsuspend(ctx, target); err != nil {
		t.Fatal(err)
	}
	if a, _ := sl.Account(target); a.Suspended {
		t.Fatal("account still suspended")
	}
	// Smartlead answers a suspend of an account it does not have with 400, a read of it with 404.
	var apiErr *smartlead.APIError
	if err := c.Suspend(ctx, 999999); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Retryable() {
		t.Fatalf("Suspend(unknown) = %v, want a 400 that is not retried", err)
	}
	if _, err := c.DailyLimit(ctx, 999999); !errors.Is(err, smartlead.ErrNotFound) {
		t.Fatalf("DailyLimit(unknown) = %v, want ErrNotFound", err)
	}

	campaigns, err := c.Campaigns(ctx, target)
	if err != nil || fmt.Sprint(campaigns) != fmt.Sprint([]int64{active, paused, lonely}) {
		t.Fatalf("Campaigns = %v, %v", campaigns, err)
	}
	for _, cid := range []int64{active, paused} {
		if err := c.RemoveFromCampaign(ctx, cid, target); err != nil {
			t.Fatalf("RemoveFromCampaign(%d): %v", cid, err)
		}
	}
	if err := c.RemoveFromCampaign(ctx, lonely, target); !errors.Is(err, smartlead.ErrLastAccount) {
		t.Fatalf("removing the last account of an ACTIVE campaign: %v, want ErrLastAccount", err)
	}
	if err := c.AddToCampaign(ctx, active, target); err != nil {
		t.Fatal(err)
	}
	if camp, _ := sl.Campaign(active); fmt.Sprint(camp.AccountIDs) != fmt.Sprint([]int64{ids[0], target}) {
		t.Fatalf("campaign accounts after restore = %v", camp.AccountIDs)
	}
	calls := sl.CallStrings(http.MethodDelete, http.MethodPost)
	want := []string{
		fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", target),
		fmt.Sprintf(`DELETE /campaigns/%d/email-accounts {"email_account_ids":[%d]}`, active, target),
		fmt.Sprintf(`DELETE /campaigns/%d/email-accounts {"email_account_ids":[%d]}`, paused, target),
		fmt.Sprintf(`DELETE /campaigns/%d/email-accounts {"email_account_ids":[%d]}`, lonely, target),
		fmt.Sprintf(`POST /campaigns/%d/email-accounts {"email_account_ids":[%d]}`, active, target),
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestRetryAfterOn429(t *testing.T) {
	sl, base := newStandin(t)
	id := sl.AddAccount("a@acme.com")
	sl.Inject(standin.Fault{Count: 2, Code: http.StatusTooManyRequests, RetryAfter: "1"})
	var observed []int
	c := newClient(t, base, smartlead.Options{Observe: func(op string, code int) { observed = append(observed, code) }})
	if err := c.Suspend(context.Background(), id); err != nil {
		t.Fatalf("Suspend after two 429s: %v", err)
	}
	calls := sl.Calls()
	if len(calls) != 3 || calls[0].Code != 429 || calls[1].Code != 429 || calls[2].Code != 200 {
		t.Fatalf("calls = %+v", calls)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].At.Sub(calls[i-1].At); gap < 900*time.Millisecond {
			t.Errorf("retry %d came %s after the 429, before its Retry-After of 1s", i, gap)
		}
	}
	if fmt.Sprint(observed) != "[429 429 200]" {
		t.Errorf("observed codes = %v", observed)
	}
	if a, _ := sl.Account(id); !a.Suspended {
		t.Error("not suspended in the end")
	}
}

func TestBackoffOn5xx(t *testing.T) {
	sl, base := newStandin(t)
	id := sl.AddAccount("a@acme.com")
	c := newClient(t, base, smartlead.Options{MaxAttempts: 4})
	sl.Inject(standin.Fault{Count: 2, Code: http.StatusBadGateway})
	if err := c.Unsuspend(context.Background(), id); err != nil {
		t.Fatalf("Unsuspend after two 502s: %v", err)
	}
	if n := len(sl.Calls()); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}

	sl.ResetCalls()
	sl.Inject(standin.Fault{Count: -1, Code: http.StatusInternalServerError})
	err := c.Suspend(context.Background(), id)
	var apiErr *smartlead.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Attempts != 4 || !apiErr.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	if n := len(sl.Calls()); n != 4 {
		t.Fatalf("%d calls, want 4 (MaxAttempts)", n)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	sl, base := newStandin(t)
	c := newClient(t, base, smartlead.Options{})
	err := c.Suspend(context.Background(), 42)
	var apiErr *smartlead.APIError
	if !errors.As(err, &apiErr) || apiErr.Retryable() || apiErr.Attempts != 1 || len(sl.Calls()) != 1 {
		t.Fatalf("err = %v, calls = %d", err, len(sl.Calls()))
	}
}

func TestLimiterIsSharedPerKey(t *testing.T) {
	sl, base := newStandin(t)
	id := sl.AddAccount("a@acme.com")
	limiters := &smartlead.Limiters{Limit: 20, Burst: 1} // one request per 50 ms
	a := newClient(t, base, smartlead.Options{Limiter: limiters.For(apiKey)})
	b := newClient(t, base, smartlead.Options{Limiter: limiters.For(apiKey)})
	first, again, other := limiters.For(apiKey), limiters.For(apiKey), limiters.For("another key")
	if first != again || first == other {
		t.Fatal("Limiters.For must return one limiter per key")
	}
	done := make(chan error, 10)
	for i := 0; i < 10; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		go func() { done <- c.Suspend(context.Background(), id) }()
	}
	for i := 0; i < 10; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	calls := sl.Calls()
	if total := calls[len(calls)-1].At.Sub(calls[0].At); total < 9*45*time.Millisecond {
		t.Fatalf("10 calls through one 20/s limiter took %s; they were not spaced", total)
	}
}

func TestAPIKeyNeverInErrors(t *testing.T) {
	// A transport error: net/http puts the whole URL, query included, in its error text.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	c := newClient(t, deadURL, smartlead.Options{MaxAttempts: 2})
	err := c.Suspend(context.Background(), 1)
	if err == nil || strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), "sk-test") {
		t.Fatalf("error leaks the key or is nil: %v", err)
	}
	if !strings.Contains(err.Error(), "REDACTED") {
		t.Fatalf("expected the key to be visibly redacted: %v", err)
	}

	// An error body that echoes the request (some APIs do).
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad request %s"}`, r.URL.String())
	}))
	defer echo.Close()
	c = newClient(t, echo.URL, smartlead.Options{})
	err = c.Suspend(context.Background(), 1)
	if err == nil || strings.Contains(err.Error(), "sk-test") {
		t.Fatalf("error leaks the key: %v", err)
	}

	// Timeouts.
	sl, base := newStandin(t)
	sl.SetLatency(200 * time.Millisecond)
	c = newClient(t, base, smartlead.Options{HTTPClient: &http.Client{Timeout: 20 * time.Millisecond}, MaxAttempts: 2})
	err = c.Suspend(context.Background(), sl.AddAccount("a@acme.com"))
	if err == nil || strings.Contains(err.Error(), "sk-test") {
		t.Fatalf("timeout error leaks the key: %v", err)
	}
	for _, call := range sl.Calls() {
		if strings.Contains(call.String(), "sk-test") {
			t.Fatalf("the stand-in recorded the key: %s", call)
		}
	}
}

func TestWrongKeyIsUnauthorized(t *testing.T) {
	_, base := newStandin(t)
	c, err := smartlead.New(base, "wrong", smartlead.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Suspend(context.Background(), 1); !errors.Is(err, smartlead.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct{ base, key string }{{"ftp://x", "k"}, {"http://", "k"}, {"://", "k"}, {"http://x", ""}} {
		if _, err := smartlead.New(tc.base, tc.key, smartlead.Options{}); err == nil {
			t.Errorf("New(%q, %q) accepted", tc.base, tc.key)
		}
	}
}

// A 429's Retry-After holds every client of the key, not only the call that got it: a second worker on
// the same key sends nothing until the pause has passed, while a worker on another key goes on.
func TestRetryAfterHoldsTheWholeKey(t *testing.T) {
	sl, base := newStandin(t)
	id := sl.AddAccount("a@acme.com")
	limiters := &smartlead.Limiters{Limit: rate.Inf, Burst: 1}
	first := newClient(t, base, smartlead.Options{Limiter: limiters.For(apiKey)})
	second := newClient(t, base, smartlead.Options{Limiter: limiters.For(apiKey)})
	sl.Inject(standin.Fault{Count: 1, Code: http.StatusTooManyRequests, RetryAfter: "1"})
	if err := first.Suspend(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// first's retry came after the pause; now the pause is over. Put the key on hold again and have the
	// second client call while it lasts.
	sl.ResetCalls()
	sl.Inject(standin.Fault{Count: 1, Code: http.StatusTooManyRequests, RetryAfter: "1"})
	done := make(chan error, 1)
	go func() { done <- first.Unsuspend(context.Background(), id) }()
	// The stand-in records the call when it arrives; the hold starts when first reads the answer.
	for time.Until(limiters.For(apiKey).HeldUntil()) < 500*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	if err := second.Suspend(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := sl.Calls()
	if len(calls) != 3 || calls[0].Code != http.StatusTooManyRequests {
		t.Fatalf("calls %v", sl.CallStrings())
	}
	for _, c := range calls[1:] {
		if gap := c.At.Sub(calls[0].At); gap < 900*time.Millisecond {
			t.Fatalf("%s went %s after the 429 with Retry-After: 1; the key's pause was not honoured", c, gap)
		}
	}
}

func TestDailyLimitAgainstStandin(t *testing.T) {
	sl, base := newStandin(t)
	id := sl.AddAccount("a@acme.com")
	sl.SetAccountDailyLimit(id, 33)
	c := newClient(t, base, smartlead.Options{})
	ctx := context.Background()
	if got, err := c.DailyLimit(ctx, id); err != nil || got != 33 {
		t.Fatalf("DailyLimit = %d, %v", got, err)
	}
	if err := c.SetDailyLimit(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if a, _ := sl.Account(id); a.MessagePerDay != 0 || a.Suspended {
		t.Fatalf("account %+v", a)
	}
	if _, err := c.DailyLimit(ctx, 999999); !errors.Is(err, smartlead.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	want := []string{fmt.Sprintf("GET /email-accounts/%d/", id), fmt.Sprintf(`POST /email-accounts/%d {"max_email_per_day":0}`, id),
		"GET /email-accounts/999999/"}
	if got := sl.CallStrings(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls %q", got)
	}
}

// Forty mailboxes of one organization resolving their account ids at once cost one paging pass of the
// account list between them, not one each; an address the list lacks costs nothing more until the list
// is old enough to read again, and an account added in Smartlead is found then.
func TestAccountIDsFromOneSharedList(t *testing.T) {
	sl, base := newStandin(t)
	var ids []int64
	for i := range 250 {
		ids = append(ids, sl.AddAccount(fmt.Sprintf("Box%03d@acme.com", i)))
	}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	dirs := &smartlead.Directories{Now: func() time.Time { return now }}
	ctx := context.Background()
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			c := newClient(t, base, smartlead.Options{Accounts: dirs.For(base, apiKey)})
			got, err := c.FindAccountID(ctx, fmt.Sprintf(" box%03d@ACME.com", i*6))
			if err == nil && got != ids[i*6] {
				err = fmt.Errorf("box%03d resolved to %d, want %d", i*6, got, ids[i*6])
			}
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sl.Calls()); n != 3 { // 250 accounts: pages of 100, 100, 50
		t.Fatalf("40 lookups made %d calls, want one pass of 3 pages: %v", n, sl.CallStrings())
	}

	c := newClient(t, base, smartlead.Options{Accounts: dirs.For(base, apiKey)})
	late := sl.AddAccount("late@acme.com")
	if _, err := c.FindAccountID(ctx, "late@acme.com"); !errors.Is(err, smartlead.ErrNotFound) {
		t.Fatalf("a lookup within the refresh interval: %v, want ErrNotFound from the list held", err)
	}
	if n := len(sl.Calls()); n != 3 {
		t.Fatalf("a miss within the refresh interval called Smartlead: %v", sl.CallStrings())
	}
	now = now.Add(smartlead.DefaultMinRefresh)
	if got, err := c.FindAccountID(ctx, "late@acme.com"); err != nil || got != late {
		t.Fatalf("after the refresh interval: %d, %v; want %d", got, err, late)
	}
	if n := len(sl.Calls()); n != 6 {
		t.Fatalf("the refresh made %d calls in all, want 6: %v", n, sl.CallStrings())
	}
	// Another key (another organization) has its own list.
	if dirs.For(base, "other-key") == dirs.For(base, apiKey) || dirs.For(base+"/", apiKey) != dirs.For(base, apiKey) {
		t.Fatal("directories are not one per key and base URL")
	}
}

// The account sync's read (SPEC §5): every page, with the fields it compares, as the stand-in (and
// Smartlead) answers them; 250 accounts are three pages.
func TestListAccountsReadsTheSyncFields(t *testing.T) {
	sl, base := newStandin(t)
	var last int64
	for i := range 250 {
		last = sl.AddAccount(fmt.Sprintf("box%03d@acme.com", i))
	}
	sl.EditAccount(last, func(a *standin.Account) {
		a.Suspended, a.MessagePerDay, a.DailySentCount, a.SMTPOK, a.Warmup.Status = true, 25, 17, false, "INACTIVE"
	})
	accounts, err := newClient(t, base, smartlead.Options{}).ListAccounts(context.Background())
	if err != nil || len(accounts) != 250 {
		t.Fatalf("%d accounts, %v", len(accounts), err)
	}
	first, edited := accounts[0], accounts[249]
	if first.FromEmail != "box000@acme.com" || first.MessagePerDay != 40 || first.Suspended || !first.SMTPOK || !first.IMAPOK || !first.WarmupEnabled() {
		t.Fatalf("a new account read as %+v", first)
	}
	if edited.ID != last || !edited.Suspended || edited.MessagePerDay != 25 || edited.DailySentCount != 17 || edited.SMTPOK || edited.WarmupEnabled() {
		t.Fatalf("the edited account read as %+v", edited)
	}
	if n := len(sl.Calls()); n != 3 {
		t.Fatalf("%d calls: %v", n, sl.CallStrings())
	}
}

// A listing answered 404 (a gateway between deploys, a base URL without its path) says nothing of whether
// an account has the address: FindAccountID's error then does not match ErrNotFound, with or without the
// shared account directory, and Reachable fails; once Smartlead answers, an address without an account
// is ErrNotFound and Reachable is nil.
func TestListingNotFoundIsNotAnAddressWithoutAccount(t *testing.T) {
	for _, dirs := range []*smartlead.Directories{nil, {}} {
		s, base := newStandin(t)
		s.AddAccount("mia.voss@acme-mail.io")
		opts := smartlead.Options{MaxAttempts: 1}
		if dirs != nil {
			opts.Accounts = dirs.For(base, apiKey)
		}
		c := newClient(t, base, opts)
		s.Inject(standin.Fault{Count: -1, Code: http.StatusNotFound})
		if _, err := c.FindAccountID(context.Background(), "nora.field@acme-mail.io"); err == nil || errors.Is(err, smartlead.ErrNotFound) {
			t.Errorf("directory %v: a listing answered 404 taken for no account: %v", dirs != nil, err)
		}
		if err := c.Reachable(context.Background()); err == nil {
			t.Errorf("directory %v: Reachable while every path answers 404", dirs != nil)
		}
		s.ClearFaults()
		if err := c.Reachable(context.Background()); err != nil {
			t.Errorf("directory %v: Reachable: %v", dirs != nil, err)
		}
		if _, err := c.FindAccountID(context.Background(), "nora.field@acme-mail.io"); !errors.Is(err, smartlead.ErrNotFound) {
			t.Errorf("directory %v: an address without an account: %v", dirs != nil, err)
		}
	}
}
