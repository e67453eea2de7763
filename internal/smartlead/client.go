// Package smartlead is bounceguard's client for the few Smartlead API calls it makes: suspend
// and unsuspend an email account, remove it from and restore it to campaigns, and find an account id by
// email. Every call waits on one rate limiter shared by all clients of the same API key, honours
// Retry-After on 429, and retries 5xx answers and timeouts with backoff. The API key travels as the
// api_key query parameter and never appears in an error or a log line.
package smartlead

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultBaseURL is Smartlead's API.
const DefaultBaseURL = "https://server.smartlead.ai/api/v1"

// Client is what bounceguard needs from Smartlead. The HTTP implementation is *HTTPClient; tests may use
// any other, or the stand-in server in package standin.
type Client interface {
	// Suspend stops an email account from sending (PUT /email-accounts/suspend/{id}).
	Suspend(ctx context.Context, accountID int64) error
	// Unsuspend lets a suspended email account send again (DELETE /email-accounts/unsuspend/{id}).
	Unsuspend(ctx context.Context, accountID int64) error
	// Campaigns lists the campaigns an email account sends for (GET /email-accounts/{id}?fetch_campaigns=true).
	Campaigns(ctx context.Context, accountID int64) ([]int64, error)
	// RemoveFromCampaign takes an email account out of a campaign (DELETE /campaigns/{cid}/email-accounts).
	// It returns an error matching ErrLastAccount when Smartlead refuses because the account is the last
	// one of an ACTIVE campaign.
	RemoveFromCampaign(ctx context.Context, campaignID, accountID int64) error
	// AddToCampaign puts an email account back into a campaign (POST /campaigns/{cid}/email-accounts).
	AddToCampaign(ctx context.Context, campaignID, accountID int64) error
	// DailyLimit reads an email account's daily sending limit, message_per_day (GET /email-accounts/{id}/).
	DailyLimit(ctx context.Context, accountID int64) (int32, error)
	// SetDailyLimit sets an email account's daily sending limit (POST /email-accounts/{id} with
	// {"max_email_per_day": n}).
	SetDailyLimit(ctx context.Context, accountID int64, limit int32) error
	// FindAccountID returns the id of the email account that sends as email (GET /email-accounts/, paged).
	// It returns an error matching ErrNotFound when there is none.
	FindAccountID(ctx context.Context, email string) (int64, error)
	// ListAccounts reads every email account of the organization, a page of PageSize at a time
	// (GET /email-accounts/?offset=&limit=).
	ListAccounts(ctx context.Context) ([]Account, error)
	// Reachable reads one account of the list (GET /email-accounts/?offset=0&limit=1): nil when Smartlead
	// answers for the API key. A 404 for one account means the account is gone only while this answers: a
	// gateway between deploys, or a base URL that lost its path, answers 404 to every path.
	Reachable(ctx context.Context) error
}

var (
	// ErrNotFound is returned when Smartlead has no such account (404, or no account with that email).
	ErrNotFound = errors.New("not found in Smartlead")
	// ErrLastAccount is returned when Smartlead will not remove the last email account of an ACTIVE campaign.
	ErrLastAccount = errors.New("the account is the last one of an ACTIVE campaign")
	// ErrUnauthorized is returned when Smartlead rejects the API key.
	ErrUnauthorized = errors.New("Smartlead rejected the API key")
	// ErrEndlessListing is returned when the account listing does not end within MaxPages pages, or a page
	// repeats the page before it.
	ErrEndlessListing = errors.New("the account listing does not end")
)

// APIError is an unsuccessful answer from Smartlead. Its message never holds the API key.
type APIError struct {
	// Op is the operation, e.g. "Suspend".
	Op string
	// StatusCode is the HTTP status of the last attempt (0 when no answer came).
	StatusCode int
	// Message is Smartlead's error text, or the transport error, redacted and truncated.
	Message string
	// Attempts is how many requests were made.
	Attempts int
	kind     error
}

func (e *APIError) Error() string {
	code := "no answer"
	if e.StatusCode != 0 {
		code = "HTTP " + strconv.Itoa(e.StatusCode)
	}
	msg := fmt.Sprintf("smartlead %s: %s after %d attempt(s)", e.Op, code, e.Attempts)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is lets errors.Is match ErrNotFound, ErrLastAccount, ErrUnauthorized and ErrEndlessListing.
func (e *APIError) Is(target error) bool { return e.kind != nil && e.kind == target }

// Retryable reports whether a later attempt may succeed (429, 5xx, timeouts).
func (e *APIError) Retryable() bool {
	return e.StatusCode == 0 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Options tune an HTTPClient; zero values take the defaults.
type Options struct {
	// HTTPClient makes the requests; default: a client with a 15 s timeout.
	HTTPClient *http.Client
	// Limiter spaces the requests; default: a new limiter of DefaultLimit/DefaultBurst. Share one per API key
	// (see Limiters).
	Limiter *Limiter
	// MaxAttempts bounds the requests per call, retries included; default 5.
	MaxAttempts int
	// Backoff is the first wait after a 5xx or timeout; it doubles per attempt, with jitter; default 500 ms.
	Backoff time.Duration
	// MaxWait caps one wait (Retry-After or backoff); default 30 s.
	MaxWait time.Duration
	// Accounts, when set, is the key's shared account list that FindAccountID looks addresses up in (see
	// Directories); nil: each lookup pages through the accounts itself.
	Accounts *AccountDirectory
	// Observe, when set, is called after every request with the operation and the HTTP status (0: no answer).
	Observe func(op string, code int)
}

// HTTPClient calls the Smartlead API over HTTP.
type HTTPClient struct {
	base   *url.URL
	apiKey string
	opts   Options
}

var _ Client = (*HTTPClient)(nil)

// New returns a client for the API at baseURL (DefaultBaseURL when empty) with the given API key.
func New(baseURL, apiKey string, opts Options) (*HTTPClient, error) {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("smartlead: base URL %q is not an http(s) URL", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("smartlead: empty API key")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(DefaultLimit, DefaultBurst)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	return &HTTPClient{base: u, apiKey: apiKey, opts: opts}, nil
}

type accountIDs struct {
	EmailAccountIDs []int64 `json:"email_account_ids"`
}

// Suspend implements Client.
func (c *HTTPClient) Suspend(ctx context.Context, id int64) error {
	return c.do(ctx, "Suspend", http.MethodPut, "/email-accounts/suspend/"+itoa(id), nil, nil, nil)
}

// Unsuspend implements Client.
func (c *HTTPClient) Unsuspend(ctx context.Context, id int64) error {
	return c.do(ctx, "Unsuspend", http.MethodDelete, "/email-accounts/unsuspend/"+itoa(id), nil, nil, nil)
}

// Campaigns implements Client.
func (c *HTTPClient) Campaigns(ctx context.Context, id int64) ([]int64, error) {
	var out struct {
		CampaignIDs []int64 `json:"campaign_ids"`
	}
	err := c.do(ctx, "GetCampaigns", http.MethodGet, "/email-accounts/"+itoa(id), url.Values{"fetch_campaigns": {"true"}}, nil, &out)
	return out.CampaignIDs, err
}

// RemoveFromCampaign implements Client.
func (c *HTTPClient) RemoveFromCampaign(ctx context.Context, campaignID, accountID int64) error {
	return c.do(ctx, "RemoveFromCampaign", http.MethodDelete, "/campaigns/"+itoa(campaignID)+"/email-accounts", nil,
		accountIDs{[]int64{accountID}}, nil)
}

// AddToCampaign implements Client.
func (c *HTTPClient) AddToCampaign(ctx context.Context, campaignID, accountID int64) error {
	return c.do(ctx, "AddToCampaign", http.MethodPost, "/campaigns/"+itoa(campaignID)+"/email-accounts", nil,
		accountIDs{[]int64{accountID}}, nil)
}

// DailyLimit implements Client.
func (c *HTTPClient) DailyLimit(ctx context.Context, id int64) (int32, error) {
	var out struct {
		MessagePerDay *int32 `json:"message_per_day"`
	}
	if err := c.do(ctx, "GetAccount", http.MethodGet, "/email-accounts/"+itoa(id)+"/", nil, nil, &out); err != nil {
		return 0, err
	}
	if out.MessagePerDay == nil {
		return 0, &APIError{Op: "GetAccount", StatusCode: http.StatusOK, Attempts: 1, Message: "the answer has no message_per_day"}
	}
	return *out.MessagePerDay, nil
}

// SetDailyLimit implements Client.
func (c *HTTPClient) SetDailyLimit(ctx context.Context, id int64, limit int32) error {
	return c.do(ctx, "SetDailyLimit", http.MethodPost, "/email-accounts/"+itoa(id), nil,
		struct {
			MaxEmailPerDay int32 `json:"max_email_per_day"`
		}{limit}, nil)
}

// PageSize is the page size used to list email accounts.
const PageSize = 100

// FindAccountID implements Client. With Options.Accounts it looks the address up in the key's shared
// account list (one paging pass for the whole organization); without, it pages until it finds it.
func (c *HTTPClient) FindAccountID(ctx context.Context, email string) (int64, error) {
	notFound := &APIError{Op: "FindAccountID", StatusCode: http.StatusNotFound, Attempts: 1,
		Message: "no email account with that address", kind: ErrNotFound}
	if c.opts.Accounts != nil {
		id, found, err := c.opts.Accounts.Find(ctx, email, c.listAccounts)
		if err != nil {
			return 0, listFailed(err)
		}
		if !found {
			return 0, notFound
		}
		return id, nil
	}
	var id int64
	err := c.pageAccounts(ctx, func(page []Account) bool {
		for _, a := range page {
			if strings.EqualFold(strings.TrimSpace(a.FromEmail), strings.TrimSpace(email)) {
				id = a.ID
				return false
			}
		}
		return true
	})
	if err != nil {
		return 0, listFailed(err)
	}
	if id == 0 {
		return 0, notFound
	}
	return id, nil
}

// listFailed is the error of a listing that failed: even a 404 says nothing of whether an account has the
// address (the list itself was not found), so it does not match ErrNotFound.
func listFailed(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && errors.Is(ae.kind, ErrNotFound) {
		c := *ae
		c.kind = nil
		return &c
	}
	return err
}

// Reachable implements Client.
func (c *HTTPClient) Reachable(ctx context.Context) error {
	var page []Account
	return c.do(ctx, opList, http.MethodGet, "/email-accounts/", url.Values{"offset": {"0"}, "limit": {"1"}}, nil, &page)
}

// ListAccounts implements Client. An account listed on two pages (the list shifted while it was read) is
// returned once. A complete listing refreshes the key's account directory (Options.Accounts).
func (c *HTTPClient) ListAccounts(ctx context.Context) ([]Account, error) {
	all, err := c.listAccounts(ctx)
	if err == nil && c.opts.Accounts != nil {
		c.opts.Accounts.Store(all)
	}
	return all, err
}

// listAccounts reads every account once.
func (c *HTTPClient) listAccounts(ctx context.Context) ([]Account, error) {
	var all []Account
	seen := map[int64]bool{}
	err := c.pageAccounts(ctx, func(page []Account) bool {
		for _, a := range page {
			if !seen[a.ID] {
				seen[a.ID] = true
				all = append(all, a)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// MaxPages bounds one listing of the accounts: MaxPages pages of PageSize (100,000 accounts). A listing
// that has not ended by then fails with ErrEndlessListing.
const MaxPages = 1000

// pageAccounts reads GET /email-accounts/ page by page, handing each page to more until it returns false
// or a page is short. It reads at most MaxPages pages and stops at a page that repeats the one before (a
// server that ignores the offset), both with an error matching ErrEndlessListing: no answer makes it run,
// or hold pages, without bound. A page that is not a JSON list is an error, never an empty organization.
func (c *HTTPClient) pageAccounts(ctx context.Context, more func([]Account) bool) error {
	var prev []Account
	for n := range MaxPages {
		offset := n * PageSize
		var page *[]Account
		q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(PageSize)}}
		if err := c.do(ctx, opList, http.MethodGet, "/email-accounts/", q, nil, &page); err != nil {
			return err
		}
		if page == nil {
			return &APIError{Op: opList, StatusCode: http.StatusOK, Attempts: 1,
				Message: fmt.Sprintf("the page at offset %d holds no account list (an empty body or null)", offset)}
		}
		if len(*page) > 0 && sameAccounts(prev, *page) {
			return &APIError{Op: opList, StatusCode: http.StatusOK, Attempts: 1, kind: ErrEndlessListing,
				Message: fmt.Sprintf("the page at offset %d repeats the page before it (the offset is ignored): stopped", offset)}
		}
		if !more(*page) || len(*page) < PageSize {
			return nil
		}
		prev = *page
	}
	return &APIError{Op: opList, StatusCode: http.StatusOK, Attempts: 1, kind: ErrEndlessListing,
		Message: fmt.Sprintf("more than %d pages of %d accounts, every one full: stopped", MaxPages, PageSize)}
}

// opList is the operation name of the account listing.
const opList = "ListAccounts"

// sameAccounts reports whether two pages list the same account ids in the same order.
func sameAccounts(a, b []Account) bool {
	return slices.EqualFunc(a, b, func(x, y Account) bool { return x.ID == y.ID })
}

// do sends one request, with retries, and decodes a successful JSON answer into out (when not nil).
func (c *HTTPClient) do(ctx context.Context, op, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("smartlead %s: encoding the request: %w", op, err)
		}
	}
	u := *c.base
	u.Path += path
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("api_key", c.apiKey)
	u.RawQuery = q.Encode()

	var last *APIError
	for attempt := 1; attempt <= c.opts.MaxAttempts; attempt++ {
		if err := c.opts.Limiter.Wait(ctx); err != nil {
			return c.stop(op, attempt-1, last, err)
		}
		code, retryAfter, respBody, err := c.send(ctx, method, u.String(), body)
		if c.opts.Observe != nil {
			c.opts.Observe(op, code)
		}
		if err == nil && code >= 200 && code < 300 {
			if out != nil && len(bytes.TrimSpace(respBody)) > 0 {
				if err := json.Unmarshal(respBody, out); err != nil {
					return &APIError{Op: op, StatusCode: code, Attempts: attempt, Message: "decoding the answer: " + c.redact(err.Error())}
				}
			}
			return nil
		}
		last = &APIError{Op: op, StatusCode: code, Attempts: attempt}
		if err != nil {
			last.Message = c.redact(err.Error())
		} else {
			// Redacted before it is cut: a key straddling the cut would otherwise leave its prefix behind.
			last.Message = clip(c.redact(errorText(respBody)), maxErrorText)
			last.kind = classify(code, last.Message)
		}
		if !last.Retryable() || attempt == c.opts.MaxAttempts {
			return last
		}
		wait := c.backoff(attempt)
		if code == http.StatusTooManyRequests && retryAfter > 0 {
			// Every client of the key waits, not only this call: the limit is the key's.
			c.opts.Limiter.Hold(min(retryAfter, c.opts.MaxWait))
			wait = 0
		}
		timer := time.NewTimer(min(wait, c.opts.MaxWait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return c.stop(op, attempt, last, ctx.Err())
		case <-timer.C:
		}
	}
	return last
}

// stop reports a call given up because its context ended.
func (c *HTTPClient) stop(op string, attempts int, last *APIError, err error) error {
	if last != nil {
		last.Message += " (then gave up: " + err.Error() + ")"
		return last
	}
	return &APIError{Op: op, Attempts: attempts, Message: err.Error()}
}

// maxAnswer bounds the body read from one answer: a page of 100 accounts as Smartlead lists them is
// about 130 KB (1.3 KB an account), well over the 64 KiB once read; 8 MiB leaves room for 60 KB accounts.
const maxAnswer = 8 << 20

// send makes one request and returns the status, the Retry-After delay and the body (at most maxAnswer:
// a larger answer is an error, never a cut body decoded as if whole).
func (c *HTTPClient) send(ctx context.Context, method, target string, body []byte) (int, time.Duration, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, 0, nil, err
	}
	if len(data) > maxAnswer {
		return 0, 0, nil, fmt.Errorf("the answer (HTTP %d) is larger than %d MiB", resp.StatusCode, maxAnswer>>20)
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), data, nil
}

// backoff is the wait before attempt+1 after a 5xx or timeout: Backoff*2^(attempt-1), ±25% jitter.
func (c *HTTPClient) backoff(attempt int) time.Duration {
	d := c.opts.Backoff << min(attempt-1, 20)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+jitter, time.Millisecond)
}

// redact removes the API key from s: raw, URL-encoded, or escaped as an HTML or JSON answer would echo it.
func (c *HTTPClient) redact(s string) string {
	quoted, _ := json.Marshal(c.apiKey)
	for _, k := range []string{c.apiKey, url.QueryEscape(c.apiKey), url.PathEscape(c.apiKey), html.EscapeString(c.apiKey),
		strings.Trim(string(quoted), `"`)} {
		if k != "" {
			s = strings.ReplaceAll(s, k, "REDACTED")
		}
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errorText extracts the error text from a Smartlead error body (not yet redacted nor cut).
func errorText(body []byte) string {
	var e struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	text := ""
	if json.Unmarshal(body, &e) == nil {
		switch v := e.Error.(type) {
		case string:
			text = v
		case nil:
		default:
			if b, err := json.Marshal(v); err == nil {
				text = string(b)
			}
		}
		// Both are read: some answers put a generic "Bad Request" in error and what happened in message.
		switch m := strings.TrimSpace(e.Message); {
		case text == "":
			text = m
		case m != "" && m != text:
			text += ": " + m
		}
	}
	if text == "" {
		text = strings.TrimSpace(string(body))
	}
	return text
}

// maxErrorText bounds the Smartlead error text kept in an APIError.
const maxErrorText = 300

// clip cuts s to at most n bytes, on a character boundary, marking the cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// classify maps an unsuccessful answer to one of the package's sentinel errors, or nil.
func classify(code int, message string) error {
	lower := strings.ToLower(message)
	switch {
	case code == http.StatusNotFound:
		return ErrNotFound
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return ErrUnauthorized
	case code == http.StatusBadRequest && strings.Contains(lower, "last") && strings.Contains(lower, "active"):
		return ErrLastAccount
	}
	return nil
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
