// Package standin is a stand-in for the Smartlead API: the endpoints bounceguard calls over a small
// in-memory model of email accounts and campaigns, answering as Smartlead does, refusals included. It
// records every call, checks the api_key, and can be told to answer 429 (with Retry-After), 5xx, or
// slowly, or to carry a request out and lose its answer. Tests use it through httptest, and
// `make dev` and hack/smartlead-standin serve it on a port.
package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account is one Smartlead email account.
type Account struct {
	ID        int64  `json:"id"`
	FromEmail string `json:"from_email"`
	// Suspended is true while the account may not send.
	Suspended bool `json:"is_suspended"`
	// MessagePerDay is the account's daily sending limit (new accounts: 40).
	MessagePerDay int32 `json:"message_per_day"`
	// DailySentCount is how many emails the account sent today.
	DailySentCount int32 `json:"daily_sent_count"`
	// SMTPOK and IMAPOK say whether Smartlead's last SMTP and IMAP connection tests passed (new accounts: true).
	SMTPOK bool `json:"is_smtp_success"`
	IMAPOK bool `json:"is_imap_success"`
	// Warmup is the account's warm-up: status ACTIVE or INACTIVE (new accounts: ACTIVE).
	Warmup Warmup `json:"warmup_details"`
}

// Warmup is an account's warm-up settings, as Smartlead nests them in warmup_details.
type Warmup struct {
	Status string `json:"status"`
}

// newAccount is an account as Smartlead creates one: connected, warming up, 40 a day.
func newAccount(id int64, email string) *Account {
	return &Account{ID: id, FromEmail: strings.ToLower(email), MessagePerDay: defaultDailyLimit, SMTPOK: true, IMAPOK: true,
		Warmup: Warmup{Status: "ACTIVE"}}
}

// Campaign is one Smartlead campaign and the email accounts that send for it.
type Campaign struct {
	ID         int64   `json:"id"`
	Status     string  `json:"status"`
	AccountIDs []int64 `json:"email_account_ids"`
}

// Call is one request the stand-in received. The api_key is never recorded.
type Call struct {
	Method string
	// Path is the request path below the API root, e.g. /email-accounts/suspend/7.
	Path string
	// Query is the query string without api_key.
	Query string
	// Body is the request body.
	Body string
	// Code is the status answered.
	Code int
	// At is when the request arrived.
	At time.Time
}

// String renders a call as "METHOD /path[?query] body", the form tests compare.
func (c Call) String() string {
	s := c.Method + " " + c.Path
	if c.Query != "" {
		s += "?" + c.Query
	}
	if c.Body != "" {
		s += " " + c.Body
	}
	return s
}

// Fault makes the next Count requests (all of them when Count < 0) fail with Code; RetryAfter, when set,
// is sent as the Retry-After header. Method and PathPrefix, when set, limit the fault to the requests
// they match (e.g. DELETE /campaigns/), so that one step of an operation can fail while the others work.
// With Applied, the request is carried out first and only its answer is lost: what a gateway that
// times out (504) after Smartlead acted, or a connection cut after the write, looks like to a client.
type Fault struct {
	Count      int
	Code       int
	RetryAfter string
	Method     string
	PathPrefix string
	Applied    bool
}

func (f Fault) matches(method, path string) bool {
	return (f.Method == "" || f.Method == method) && strings.HasPrefix(path, f.PathPrefix)
}

// Server is the stand-in. Create it with New; it is safe for concurrent use.
type Server struct {
	apiKey string
	root   string

	mu        sync.Mutex
	nextID    int64
	accounts  map[int64]*Account
	campaigns map[int64]*Campaign
	calls     []Call
	faults    []Fault
	latency   time.Duration
}

// New returns a stand-in that accepts only apiKey and serves the API below root (e.g. "/api/v1"; "" for /).
func New(apiKey, root string) *Server {
	return &Server{apiKey: apiKey, root: strings.TrimRight(root, "/"), nextID: 1000,
		accounts: map[int64]*Account{}, campaigns: map[int64]*Campaign{}}
}

// AddAccount creates an email account and returns its id.
func (s *Server) AddAccount(email string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.accounts[s.nextID] = newAccount(s.nextID, email)
	return s.nextID
}

// PutAccount creates (or replaces) an email account with a chosen id.
func (s *Server) PutAccount(id int64, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = newAccount(id, email)
	s.nextID = max(s.nextID, id)
}

// EditAccount changes an account as a person in Smartlead's UI would (un-suspending a paused mailbox,
// raising its daily limit, turning warm-up off) or as its sending does (daily_sent_count); false when
// there is no such account. The change is not recorded as an API call.
func (s *Server) EditAccount(id int64, edit func(*Account)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if ok {
		edit(a)
		a.ID = id
	}
	return ok
}

// DeleteAccount removes an account as deleting it in Smartlead's UI would, and takes it out of every
// campaign; false when there is no such account.
func (s *Server) DeleteAccount(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[id] == nil {
		return false
	}
	delete(s.accounts, id)
	for _, c := range s.campaigns {
		c.AccountIDs = slices.DeleteFunc(c.AccountIDs, func(a int64) bool { return a == id })
	}
	return true
}

// Seed creates accounts from a comma-separated list of "email" or "email=id" entries, and one ACTIVE
// campaign holding all of them (so that RemoveFromCampaigns has something to remove).
func (s *Server) Seed(list string) error {
	var ids []int64
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		email, idText, hasID := strings.Cut(entry, "=")
		if !strings.Contains(email, "@") {
			return fmt.Errorf("seed entry %q: want email or email=id", entry)
		}
		if !hasID {
			ids = append(ids, s.AddAccount(email))
			continue
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("seed entry %q: the id must be a positive integer", entry)
		}
		s.PutAccount(id, email)
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		s.AddCampaign("ACTIVE", ids...)
	}
	return nil
}

// AddCampaign creates a campaign with a status (ACTIVE, PAUSED, DRAFTED, ...) and sending accounts.
func (s *Server) AddCampaign(status string, accountIDs ...int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.campaigns[s.nextID] = &Campaign{ID: s.nextID, Status: status, AccountIDs: slices.Clone(accountIDs)}
	return s.nextID
}

// defaultDailyLimit is a new account's message_per_day.
const defaultDailyLimit = 40

// SetAccountDailyLimit changes an account's daily limit, as a person may in Smartlead's UI.
func (s *Server) SetAccountDailyLimit(id int64, limit int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[id]; a != nil {
		a.MessagePerDay = limit
	}
}

// CampaignArchived is the status of an archived campaign: Smartlead refuses (400) to add accounts to it
// or remove them from it.
const CampaignArchived = "ARCHIVED"

// SetCampaignStatus changes a campaign's status (e.g. to CampaignArchived), as a person may in Smartlead's
// UI; false when there is no such campaign.
func (s *Server) SetCampaignStatus(id int64, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.campaigns[id]
	if c != nil {
		c.Status = status
	}
	return c != nil
}

// DeleteCampaign deletes a campaign, as a person may while an account of it is paused.
func (s *Server) DeleteCampaign(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.campaigns, id)
}

// Account returns a copy of an account.
func (s *Server) Account(id int64) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// Campaign returns a copy of a campaign.
func (s *Server) Campaign(id int64) (Campaign, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.campaigns[id]
	if !ok {
		return Campaign{}, false
	}
	cp := *c
	cp.AccountIDs = slices.Clone(c.AccountIDs)
	return cp, true
}

// Calls returns the calls received so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallStrings returns the calls as strings (see Call.String), optionally only those with the given method.
func (s *Server) CallStrings(methods ...string) []string {
	var out []string
	for _, c := range s.Calls() {
		if len(methods) == 0 || slices.Contains(methods, c.Method) {
			out = append(out, c.String())
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Inject queues a fault; faults apply in order. A fault with Count 0 is ignored.
func (s *Server) Inject(f Fault) {
	if f.Count == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// ServeHTTP implements http.Handler. Besides the API, GET /_standin/calls lists the recorded calls,
// GET /_standin/state the accounts and campaigns, and PATCH /_standin/accounts/{id} changes an account as
// a person in Smartlead's UI would (see EditAccount), for people trying bounceguard locally.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/_standin/accounts/"); ok {
		switch r.Method {
		case http.MethodPatch:
			s.editFromRequest(w, id, r.Body)
		case http.MethodDelete:
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || !s.DeleteAccount(n) {
				http.Error(w, `{"error":"Email account not found"}`, http.StatusNotFound)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, `{"error":"PATCH or DELETE"}`, http.StatusMethodNotAllowed)
		}
		return
	}
	switch r.URL.Path {
	case "/_standin/calls":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Calls())
		return
	case "/_standin/state":
		s.mu.Lock()
		state := struct {
			Accounts  []*Account  `json:"accounts"`
			Campaigns []*Campaign `json:"campaigns"`
		}{Campaigns: s.sortedCampaigns()}
		for _, a := range s.accounts {
			state.Accounts = append(state.Accounts, a)
		}
		slices.SortFunc(state.Accounts, func(a, b *Account) int { return int(a.ID - b.ID) })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(state)
		s.mu.Unlock()
		return
	}
	at := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()
	key := q.Get("api_key")
	q.Del("api_key")
	path := strings.TrimPrefix(r.URL.Path, s.root)

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	code, answer, header := s.route(r.Method, path, q, key, body)
	call := Call{Method: r.Method, Path: path, Query: q.Encode(), Body: strings.TrimSpace(string(body)), Code: code, At: at}
	s.calls = append(s.calls, call)
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(answer)
}

type errorBody struct {
	Error string `json:"error"`
}

type okBody struct {
	OK bool `json:"ok"`
}

// route answers one request; s.mu is held.
func (s *Server) route(method, path string, q map[string][]string, key string, body []byte) (int, any, map[string]string) {
	if i := slices.IndexFunc(s.faults, func(f Fault) bool { return f.matches(method, path) }); i >= 0 {
		f := s.faults[i]
		if f.Count > 0 {
			s.faults[i].Count--
			if s.faults[i].Count == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		h := map[string]string{}
		if f.RetryAfter != "" {
			h["Retry-After"] = f.RetryAfter
		}
		if f.Applied {
			s.serve(method, path, q, key, body) // done; the answer is lost
		}
		return f.Code, errorBody{http.StatusText(f.Code)}, h
	}
	return s.serve(method, path, q, key, body)
}

// serve carries out one request; s.mu is held.
func (s *Server) serve(method, path string, q map[string][]string, key string, body []byte) (int, any, map[string]string) {
	if key == "" || key != s.apiKey {
		return http.StatusUnauthorized, errorBody{"Invalid API key"}, nil
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == http.MethodPut && len(parts) == 3 && parts[0] == "email-accounts" && parts[1] == "suspend":
		return s.setSuspended(parts[2], true)
	case method == http.MethodDelete && len(parts) == 3 && parts[0] == "email-accounts" && parts[1] == "unsuspend":
		return s.setSuspended(parts[2], false)
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "email-accounts":
		return s.listAccounts(q)
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "email-accounts":
		return s.getAccount(parts[1], q)
	case method == http.MethodPost && len(parts) == 2 && parts[0] == "email-accounts":
		return s.updateAccount(parts[1], body)
	case len(parts) == 3 && parts[0] == "campaigns" && parts[2] == "email-accounts" &&
		(method == http.MethodDelete || method == http.MethodPost):
		return s.campaignAccounts(method, parts[1], body)
	}
	return http.StatusNotFound, errorBody{"no route for " + method + " " + path}, nil
}

func (s *Server) account(idText string) (*Account, int, any) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return nil, http.StatusBadRequest, errorBody{"invalid email account id"}
	}
	a := s.accounts[id]
	if a == nil {
		return nil, http.StatusNotFound, errorBody{"Email account not found"}
	}
	return a, 0, nil
}

// setSuspended serves suspend and unsuspend. Smartlead answers both with 400 (not 404) for an account id
// it has no account for: "Invalid account ID or account not found".
func (s *Server) setSuspended(idText string, suspended bool) (int, any, map[string]string) {
	a, _, _ := s.account(idText)
	if a == nil {
		return http.StatusBadRequest, errorBody{"Invalid account ID or account not found"}, nil
	}
	a.Suspended = suspended
	return http.StatusOK, okBody{true}, nil
}

func (s *Server) listAccounts(q map[string][]string) (int, any, map[string]string) {
	offset, _ := strconv.Atoi(first(q["offset"]))
	limit, err := strconv.Atoi(first(q["limit"]))
	if err != nil || limit <= 0 || limit > 100 {
		return http.StatusBadRequest, errorBody{"limit must be between 1 and 100"}, nil
	}
	ids := make([]int64, 0, len(s.accounts))
	for id := range s.accounts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	page := []Account{}
	for i := offset; i >= 0 && i < len(ids) && len(page) < limit; i++ {
		page = append(page, *s.accounts[ids[i]])
	}
	return http.StatusOK, page, nil
}

func (s *Server) getAccount(idText string, q map[string][]string) (int, any, map[string]string) {
	a, code, e := s.account(idText)
	if a == nil {
		return code, e, nil
	}
	out := struct {
		Account
		CampaignIDs []int64 `json:"campaign_ids,omitempty"`
	}{Account: *a}
	if first(q["fetch_campaigns"]) == "true" {
		out.CampaignIDs = []int64{}
		for _, c := range s.sortedCampaigns() {
			if slices.Contains(c.AccountIDs, a.ID) {
				out.CampaignIDs = append(out.CampaignIDs, c.ID)
			}
		}
	}
	return http.StatusOK, out, nil
}

// editFromRequest serves PATCH /_standin/accounts/{id}: a JSON object of the account fields to change
// (is_suspended, message_per_day, daily_sent_count, is_smtp_success, is_imap_success, warmup_details),
// as a person in the UI would change them. For make dev.
func (s *Server) editFromRequest(w http.ResponseWriter, idText string, body io.Reader) {
	id, err := strconv.ParseInt(idText, 10, 64)
	data, rerr := io.ReadAll(io.LimitReader(body, 64<<10))
	w.Header().Set("Content-Type", "application/json")
	if err != nil || rerr != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(errorBody{"PATCH /_standin/accounts/{id} with a JSON object of account fields"})
		return
	}
	var decodeErr error
	found := s.EditAccount(id, func(a *Account) { decodeErr = json.Unmarshal(data, a) })
	switch {
	case !found:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(errorBody{"no such account"})
	case decodeErr != nil:
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(errorBody{"not a JSON object of account fields"})
	default:
		a, _ := s.Account(id)
		_ = json.NewEncoder(w).Encode(a)
	}
}

// updateAccount applies POST /email-accounts/{id}: only max_email_per_day is modelled.
func (s *Server) updateAccount(idText string, body []byte) (int, any, map[string]string) {
	a, code, e := s.account(idText)
	if a == nil {
		return code, e, nil
	}
	var in struct {
		MaxEmailPerDay *int32 `json:"max_email_per_day"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.MaxEmailPerDay == nil || *in.MaxEmailPerDay < 0 {
		return http.StatusBadRequest, errorBody{"max_email_per_day must be a number >= 0"}, nil
	}
	a.MessagePerDay = *in.MaxEmailPerDay
	return http.StatusOK, okBody{true}, nil
}

func (s *Server) sortedCampaigns() []*Campaign {
	out := make([]*Campaign, 0, len(s.campaigns))
	for _, c := range s.campaigns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Campaign) int { return int(a.ID - b.ID) })
	return out
}

func (s *Server) campaignAccounts(method, idText string, body []byte) (int, any, map[string]string) {
	id, err := strconv.ParseInt(idText, 10, 64)
	c := s.campaigns[id]
	if err != nil || c == nil {
		return http.StatusNotFound, errorBody{"Campaign not found"}, nil
	}
	var in struct {
		EmailAccountIDs []int64 `json:"email_account_ids"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.EmailAccountIDs) == 0 {
		return http.StatusBadRequest, errorBody{"email_account_ids is required"}, nil
	}
	for _, aid := range in.EmailAccountIDs {
		if s.accounts[aid] == nil {
			return http.StatusNotFound, errorBody{"Email account not found"}, nil
		}
	}
	if c.Status == CampaignArchived {
		return http.StatusBadRequest, errorBody{"Campaign is archived and cannot be modified"}, nil
	}
	if method == http.MethodPost {
		for _, aid := range in.EmailAccountIDs {
			// Smartlead adds only accounts that are connected and not suspended.
			if a := s.accounts[aid]; a.Suspended || !a.SMTPOK || !a.IMAPOK {
				return http.StatusUnprocessableEntity, errorBody{fmt.Sprintf(
					"Email account %d must be connected and not suspended to be added to a campaign", aid)}, nil
			}
		}
		for _, aid := range in.EmailAccountIDs {
			if !slices.Contains(c.AccountIDs, aid) {
				c.AccountIDs = append(c.AccountIDs, aid)
			}
		}
		return http.StatusOK, okBody{true}, nil
	}
	remaining := slices.DeleteFunc(slices.Clone(c.AccountIDs), func(aid int64) bool { return slices.Contains(in.EmailAccountIDs, aid) })
	if len(remaining) == 0 && len(c.AccountIDs) > 0 && c.Status == "ACTIVE" {
		return http.StatusBadRequest, errorBody{"Cannot remove the last email account of an ACTIVE campaign"}, nil
	}
	c.AccountIDs = remaining
	return http.StatusOK, okBody{true}, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
