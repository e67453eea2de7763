package smartlead_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
)

const apiKey = "sk-test/KEY+with&odd=chars"

func newStandin(tb testing.TB) (*standin.Server, string) {
	tb.Helper()
	s := standin.New(apiKey, "/api/v1")
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
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
	c := newClient(t, base, smartlead.Options{Observe: func(_ string, code int) { observed = append(observed, code) }})
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

// The account sync's read (GET /email-accounts/, 100 a page): every page, with the fields it compares, as
// the stand-in (and Smartlead) answers them; 250 accounts are three pages.
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

// A Smartlead error text is cut to a bounded length; an API key that the answer echoes across the cut
// must not leave its prefix behind: the text is redacted first, then cut.
func TestKeyStraddlingTheCutIsRedacted(t *testing.T) {
	for _, at := range []int{280, 290, 295, 299} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				msg := strings.Repeat("x", at) + r.URL.Query().Get("api_key") + " is not allowed to do this"
				fmt.Fprintf(w, `{"error":%q}`, msg)
			}))
			defer echo.Close()
			err := newClient(t, echo.URL, smartlead.Options{}).Suspend(context.Background(), 4021)
			if err == nil {
				t.Fatal("a 400 answered no error")
			}
			text := err.Error()
			for n := 1; n <= len(apiKey); n++ {
				if strings.Contains(text, apiKey[:n]+"…") || (n >= 4 && strings.Contains(text, apiKey[:n])) {
					t.Fatalf("the error keeps a prefix of the key (%q): %q", apiKey[:n], text[len(text)-60:])
				}
			}
			if at+len("REDACTED") <= 300 && !strings.Contains(text, "REDACTED") {
				t.Fatalf("the key is not visibly redacted: %q", text)
			}
		})
	}
}

// An answer that is not JSON (a proxy's or load balancer's HTML error page) may echo the key escaped as
// HTML or inside a JSON string; it is redacted in every form.
func TestKeyEscapedInAnHTMLOrJSONAnswerIsRedacted(t *testing.T) {
	for name, body := range map[string]func(key string) string{
		"html": func(key string) string {
			return "<html><body><h1>502 Bad Gateway</h1><p>upstream failed for /suspend?api_key=" + html.EscapeString(key) + "</p></body></html>"
		},
		"json-escaped": func(key string) string {
			return `{"message":"bad key ` + strings.ReplaceAll(key, "&", `\u0026`) + `"` // cut short: not valid JSON
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, body(r.URL.Query().Get("api_key")))
			}))
			defer srv.Close()
			err := newClient(t, srv.URL, smartlead.Options{}).Unsuspend(context.Background(), 4021)
			if err == nil || strings.Contains(err.Error(), "sk-test") || !strings.Contains(err.Error(), "REDACTED") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// accountPages serves GET /email-accounts/ from page(offset), counting the requests.
func accountPages(t *testing.T, page func(offset int) string) (base string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, page(offset))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// fullPage is a page of PageSize distinct accounts starting at id first.
func fullPage(first int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range smartlead.PageSize {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"from_email":"sender%d@outreach-acme.com","message_per_day":40,"is_suspended":false}`, first+i, first+i)
	}
	return b.String() + "]"
}

// A server (or a tenant's own baseURL) that always answers a full page of new accounts cannot make a
// listing run for ever or hold more than MaxPages pages: it ends with an error saying so.
func TestListingIsBoundedAgainstAnEndlessServer(t *testing.T) {
	base, requests := accountPages(t, func(offset int) string { return fullPage(880000 + offset) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	accounts, err := newClient(t, base, smartlead.Options{}).ListAccounts(ctx)
	if !errors.Is(err, smartlead.ErrEndlessListing) {
		t.Fatalf("err = %v, want ErrEndlessListing", err)
	}
	if n := requests.Load(); n != smartlead.MaxPages {
		t.Fatalf("%d requests, want exactly MaxPages (%d)", n, smartlead.MaxPages)
	}
	if accounts != nil {
		t.Fatalf("an unbounded listing returned %d accounts; it must return none (they are not the whole list)", len(accounts))
	}
}

// A server that ignores the offset answers the same full page again: the listing stops at the repeat.
func TestListingStopsWhenAPageRepeats(t *testing.T) {
	base, requests := accountPages(t, func(int) string { return fullPage(4100) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := newClient(t, base, smartlead.Options{}).ListAccounts(ctx)
	if !errors.Is(err, smartlead.ErrEndlessListing) || !strings.Contains(err.Error(), "repeats") {
		t.Fatalf("err = %v, want ErrEndlessListing naming the repeat", err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2 (the page and its repeat)", n)
	}
}

// What else a listing page may be: a shorter last page ends it; accounts that shift between pages while
// they are read (one shows on two pages) are listed once; an answer that is no list at all (an empty
// body, null, an object, an HTML page answered 200) is an error, never an empty organization — that would
// mark every Mailbox's account as gone.
func TestListingPagesOfEveryShape(t *testing.T) {
	for _, tc := range []struct {
		name    string
		page    func(offset int) string
		want    int
		wantErr string
	}{
		{"shorter last page", func(offset int) string {
			if offset == 200 {
				return `[{"id":9001,"from_email":"last@outreach-acme.com"}]`
			}
			return fullPage(7000 + offset)
		}, 201, ""},
		{"empty last page", func(offset int) string {
			if offset == 100 {
				return `[]`
			}
			return fullPage(7000 + offset)
		}, 100, ""},
		{"an account on two pages", func(offset int) string {
			if offset == 100 {
				return `[{"id":7099,"from_email":"sender7099@outreach-acme.com"},{"id":7200,"from_email":"new@outreach-acme.com"}]`
			}
			return fullPage(7000 + offset)
		}, 101, ""},
		{"empty body", func(int) string { return "" }, 0, "no account list"},
		{"null", func(int) string { return "null" }, 0, "no account list"},
		{"an object", func(int) string { return `{"data":[]}` }, 0, "decoding"},
		{"an HTML page", func(int) string { return "<html><body>Maintenance</body></html>" }, 0, "decoding"},
		{"an answer over 8 MiB", func(int) string { return "[" + strings.Repeat(" ", 9<<20) + "]" }, 0, "larger than 8 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := accountPages(t, tc.page)
			accounts, err := newClient(t, base, smartlead.Options{}).ListAccounts(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(accounts) != tc.want {
				t.Fatalf("%d accounts, %v; want %d", len(accounts), err, tc.want)
			}
		})
	}
}

// An address's id is not trusted for ever: an account deleted in Smartlead and re-created under a new id
// (what people do with a burnt mailbox) is found once the list is older than MaxAge, and at once after a
// complete listing of the key (the account sync's), which refreshes the directory at no extra call.
func TestDirectoryFindsAnAccountRecreatedUnderANewID(t *testing.T) {
	sl, base := newStandin(t)
	for i := range 120 {
		sl.AddAccount(fmt.Sprintf("sdr%03d@acme-mail.com", i))
	}
	first := sl.AddAccount("ops@acme-mail.com")
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	dirs := &smartlead.Directories{Now: func() time.Time { return now }}
	c := newClient(t, base, smartlead.Options{Accounts: dirs.For(base, apiKey)})
	ctx := context.Background()
	if got, err := c.FindAccountID(ctx, "ops@acme-mail.com"); err != nil || got != first {
		t.Fatalf("FindAccountID = %d, %v; want %d", got, err, first)
	}
	sl.DeleteAccount(first)
	second := sl.AddAccount("ops@acme-mail.com")
	now = now.Add(time.Minute)
	calls := len(sl.Calls())
	if got, _ := c.FindAccountID(ctx, "ops@acme-mail.com"); got != first || len(sl.Calls()) != calls {
		t.Fatalf("within MaxAge: %d and %d more calls; want the id held (%d) and no call", got, len(sl.Calls())-calls, first)
	}
	now = now.Add(smartlead.DefaultMaxAge)
	sl.Inject(standin.Fault{Count: 5, Code: http.StatusBadGateway, Method: "GET"}) // the list cannot be read now
	if got, err := c.FindAccountID(ctx, "ops@acme-mail.com"); err != nil || got != first {
		t.Fatalf("after MaxAge, the list failing: %d, %v; want the id held, %d", got, err, first)
	}
	if got, err := c.FindAccountID(ctx, "ops@acme-mail.com"); err != nil || got != second {
		t.Fatalf("after MaxAge: %d, %v; want the re-created account %d", got, err, second)
	}

	sl.DeleteAccount(second)
	third := sl.AddAccount("ops@acme-mail.com")
	if _, err := c.ListAccounts(ctx); err != nil { // the sync's read
		t.Fatal(err)
	}
	calls = len(sl.Calls())
	if got, err := c.FindAccountID(ctx, "ops@acme-mail.com"); err != nil || got != third || len(sl.Calls()) != calls {
		t.Fatalf("after a sync: %d, %v, %d more calls; want %d from the sync's list", got, err, len(sl.Calls())-calls, third)
	}
}

// A rotated key's account directory does not stay for ever: unused for IdleRelease, it is let go.
func TestDirectoriesReleaseIdleKeys(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	dirs := &smartlead.Directories{Now: func() time.Time { return now }, IdleRelease: time.Hour}
	old := dirs.For("https://server.smartlead.ai/api/v1", "sk-rotated-away")
	now = now.Add(30 * time.Minute)
	kept := dirs.For("https://server.smartlead.ai/api/v1", "sk-in-use")
	now = now.Add(45 * time.Minute)
	dirs.For("https://server.smartlead.ai/api/v1", "sk-new")
	if n := dirs.Len(); n != 2 {
		t.Fatalf("%d directories held, want 2 (in use, new)", n)
	}
	if dirs.For("https://server.smartlead.ai/api/v1", "sk-in-use") != kept || dirs.For("https://server.smartlead.ai/api/v1", "sk-rotated-away") == old {
		t.Fatal("the wrong directory was let go")
	}
}

// realAccount is an email account as Smartlead's GET /email-accounts/ lists it, with the fields bounceguard
// does not read (about 1.3 KB each).
func realAccount(id int) string {
	return fmt.Sprintf(`{"id":%d,"created_at":"2025-03-14T09:26:53.000Z","updated_at":"2026-11-30T17:02:11.000Z",`+
		`"user_id":48213,"from_name":"Jordan Ellis","from_email":"jordan.ellis%d@getacme-mail.com","username":"jordan.ellis%d@getacme-mail.com",`+
		`"password":null,"smtp_host":"smtp.gmail.com","smtp_port":465,"smtp_port_type":"SSL","message_per_day":40,`+
		`"different_reply_to_address":"","is_different_imap_account":false,"imap_username":"jordan.ellis%d@getacme-mail.com",`+
		`"imap_password":null,"imap_host":"imap.gmail.com","imap_port":993,"imap_port_type":"SSL",`+
		`"signature":"<div>Jordan Ellis<br>Account Executive, Acme Corp<br><a href=\"https://acme.example\">acme.example</a><br>+1 (415) 555-0142</div>",`+
		`"custom_tracking_domain":"track.getacme-mail.com","bcc_email":null,"is_smtp_success":true,"is_imap_success":true,`+
		`"smtp_failure_error":null,"imap_failure_error":null,"type":"GMAIL","daily_sent_count":17,"client_id":null,`+
		`"campaign_count":3,"is_suspended":false,"warmup_details":{"status":"ACTIVE","total_sent_count":2841,"total_spam_count":12,`+
		`"warmup_reputation":"98%%","warmup_key_id":"coral-lake-%d","max_email_per_day":20,"reply_rate":38,"warmup_min_count":5,`+
		`"warmup_max_count":20,"daily_rampup":2,"is_rampup_enabled":true},"tags":[{"id":771,"name":"Q4 outbound","color":"#1E90FF"}]}`,
		id, id, id, id, id)
}

// A page of 100 accounts as Smartlead really lists them is well over 64 KiB: it is read whole, not cut
// into JSON that does not decode (which failed every sync of an organization with more than ~50 accounts).
func TestListingReadsFullSizePages(t *testing.T) {
	base, _ := accountPages(t, func(offset int) string {
		n := min(smartlead.PageSize, 230-offset)
		parts := make([]string, 0, n)
		for i := range n {
			parts = append(parts, realAccount(51000+offset+i))
		}
		return "[" + strings.Join(parts, ",") + "]"
	})
	if size := len(realAccount(51000)) * smartlead.PageSize; size < 96<<10 {
		t.Fatalf("the page is only %d bytes", size)
	}
	accounts, err := newClient(t, base, smartlead.Options{}).ListAccounts(context.Background())
	if err != nil || len(accounts) != 230 {
		t.Fatalf("%d accounts, %v; want 230", len(accounts), err)
	}
	if a := accounts[229]; a.ID != 51229 || a.FromEmail != "jordan.ellis51229@getacme-mail.com" || !a.WarmupEnabled() || a.DailySentCount != 17 {
		t.Fatalf("the last account read: %+v", a)
	}
}

// A 429's Retry-After may be anything: seconds, an HTTP date, nothing, garbage, a negative or fractional
// number, or a day. The call still succeeds on its retry; a usable value holds the key, never longer
// than MaxWait; an unusable one falls back to the backoff.
func TestOddRetryAfterValues(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		held       bool
	}{
		{"1", true}, {"86400", true}, {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), true},
		{"", false}, {"soon", false}, {"-5", false}, {"1.5", false}, {"0", false},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), false},
	} {
		t.Run(tc.retryAfter, func(t *testing.T) {
			sl, base := newStandin(t)
			id := sl.AddAccount("ops@getacme-mail.com")
			sl.Inject(standin.Fault{Count: 1, Code: http.StatusTooManyRequests, RetryAfter: tc.retryAfter})
			lim := smartlead.NewLimiter(rate.Inf, 1)
			const maxWait = 300 * time.Millisecond
			c := newClient(t, base, smartlead.Options{Limiter: lim, MaxWait: maxWait})
			start := time.Now()
			if err := c.Suspend(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			held := lim.HeldUntil()
			if tc.held != !held.IsZero() {
				t.Fatalf("held until %v; want a hold: %v", held, tc.held)
			}
			if held.Sub(start) > maxWait+50*time.Millisecond {
				t.Fatalf("held for %s, more than MaxWait %s", held.Sub(start), maxWait)
			}
			if calls := sl.CallStrings(); len(calls) != 2 {
				t.Fatalf("calls %v", calls)
			}
		})
	}
}

// An answer whose headers come but whose body stalls is a timeout like any other: retried, then reported
// without the key.
func TestStalledBodyIsATimeout(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `[{"id":51000,"from_email":"jordan`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, smartlead.Options{HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}, MaxAttempts: 3})
	_, err := c.ListAccounts(context.Background())
	var apiErr *smartlead.APIError
	if !errors.As(err, &apiErr) || !apiErr.Retryable() || requests.Load() != 3 || strings.Contains(err.Error(), "sk-test") {
		t.Fatalf("err %v after %d requests; want a retryable error after 3, without the key", err, requests.Load())
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
