package standin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func do(t *testing.T, s *Server, method, target, body string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestSeed(t *testing.T) {
	s := New("k", "/api/v1")
	if err := s.Seed("alice@acme.com=4711, bob@acme.com,"); err != nil {
		t.Fatal(err)
	}
	if a, ok := s.Account(4711); !ok || a.FromEmail != "alice@acme.com" {
		t.Fatalf("account 4711 = %+v %v", a, ok)
	}
	if a, ok := s.Account(4712); !ok || a.FromEmail != "bob@acme.com" {
		t.Fatalf("bob got %+v %v, want the next id after 4711", a, ok)
	}
	if c, ok := s.Campaign(4713); !ok || c.Status != "ACTIVE" || len(c.AccountIDs) != 2 {
		t.Fatalf("seeded campaign = %+v %v", c, ok)
	}
	for _, bad := range []string{"nobody", "a@b.c=x", "a@b.c=-1"} {
		if err := New("k", "").Seed(bad); err == nil {
			t.Errorf("Seed(%q) accepted", bad)
		}
	}
}

func TestRoutesAndFaults(t *testing.T) {
	s := New("key", "/api/v1")
	id := s.AddAccount("a@acme.com")
	if code, _ := do(t, s, http.MethodPut, "/api/v1/email-accounts/suspend/1001?api_key=wrong", ""); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
	if code, body := do(t, s, http.MethodGet, "/api/v1/email-accounts/?offset=0&limit=500&api_key=key", ""); code != 400 {
		t.Fatalf("limit 500: %d %s", code, body)
	}
	if code, body := do(t, s, http.MethodGet, "/api/v1/nope?api_key=key", ""); code != 404 || !strings.Contains(body, "no route") {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	if code, _ := do(t, s, http.MethodDelete, "/api/v1/campaigns/1/email-accounts?api_key=key", `{}`); code != 404 {
		t.Fatalf("unknown campaign: %d", code)
	}
	s.Inject(Fault{Count: -1, Code: 503})
	for i := 0; i < 3; i++ {
		if code, _ := do(t, s, http.MethodPut, "/api/v1/email-accounts/suspend/1001?api_key=key", ""); code != 503 {
			t.Fatalf("permanent fault, call %d: %d", i, code)
		}
	}
	s.ClearFaults()
	if code, _ := do(t, s, http.MethodPut, "/api/v1/email-accounts/suspend/1001?api_key=key", ""); code != 200 {
		t.Fatalf("after ClearFaults: %d", code)
	}
	if a, _ := s.Account(id); !a.Suspended {
		t.Fatal("not suspended")
	}
	_, body := do(t, s, http.MethodGet, "/_standin/calls", "")
	var calls []Call
	if err := json.Unmarshal([]byte(body), &calls); err != nil || len(calls) != 8 {
		t.Fatalf("calls = %s (%v)", body, err)
	}
	if strings.Contains(body, "key") && strings.Contains(body, "api_key") {
		t.Fatalf("recorded calls hold the api_key: %s", body)
	}
	if _, state := do(t, s, http.MethodGet, "/_standin/state", ""); !strings.Contains(state, `"is_suspended":true`) {
		t.Fatalf("state = %s", state)
	}
}

// Accounts carry the fields the sync reads (daily limit and count, SMTP/IMAP health, suspension, warm-up),
// and change as a person in the UI would change them, through EditAccount or PATCH /_standin/accounts/{id},
// without counting as API calls.
func TestAccountFieldsAndEdits(t *testing.T) {
	s := New("key", "/api/v1")
	id := s.AddAccount("Ann@Acme.io")
	_, body := do(t, s, http.MethodGet, "/api/v1/email-accounts/?offset=0&limit=100&api_key=key", "")
	var page []map[string]any
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page) != 1 {
		t.Fatalf("list: %s (%v)", body, err)
	}
	a := page[0]
	if a["from_email"] != "ann@acme.io" || a["message_per_day"] != float64(40) || a["daily_sent_count"] != float64(0) ||
		a["is_smtp_success"] != true || a["is_imap_success"] != true || a["is_suspended"] != false ||
		a["warmup_details"].(map[string]any)["status"] != "ACTIVE" {
		t.Fatalf("a new account: %v", a)
	}

	// bounceguard suspended it; a person un-suspends it in the UI and it sends again.
	if code, _ := do(t, s, http.MethodPut, "/api/v1/email-accounts/suspend/"+strconv.FormatInt(id, 10)+"?api_key=key", ""); code != 200 {
		t.Fatal(code)
	}
	code, body := do(t, s, http.MethodPatch, "/_standin/accounts/"+strconv.FormatInt(id, 10),
		`{"is_suspended":false,"daily_sent_count":37,"warmup_details":{"status":"INACTIVE"}}`)
	if code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	got, _ := s.Account(id)
	if got.Suspended || got.DailySentCount != 37 || got.Warmup.Status != "INACTIVE" || got.MessagePerDay != 40 || got.ID != id {
		t.Fatalf("after the person's edit: %+v", got)
	}
	if !s.EditAccount(id, func(a *Account) { a.SMTPOK = false }) || s.EditAccount(999, func(*Account) {}) {
		t.Fatal("EditAccount found the wrong accounts")
	}
	if n := len(s.Calls()); n != 2 { // the list and the suspend; the edits are not API calls
		t.Fatalf("%d calls recorded: %v", n, s.CallStrings())
	}
	for path, want := range map[string]int{"/_standin/accounts/999": 404, "/_standin/accounts/x": 400} {
		if code, _ := do(t, s, http.MethodPatch, path, `{}`); code != want {
			t.Errorf("PATCH %s: %d, want %d", path, code, want)
		}
	}
	if code, _ := do(t, s, http.MethodPatch, "/_standin/accounts/"+strconv.FormatInt(id, 10), `[1]`); code != 400 {
		t.Errorf("PATCH with a non-object: %d", code)
	}
}

// Deleting an account as a person would in the UI (DELETE /_standin/accounts/{id}): it is gone from the
// list, from its campaigns, and answers 404 — what the sync reports as AccountFound=False.
func TestDeleteAccount(t *testing.T) {
	s := New("key", "/api/v1")
	keep, gone := s.AddAccount("keep@acme.io"), s.AddAccount("gone@acme.io")
	cid := s.AddCampaign("ACTIVE", keep, gone)
	if code, _ := do(t, s, http.MethodDelete, "/_standin/accounts/"+strconv.FormatInt(gone, 10), ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	_, body := do(t, s, http.MethodGet, "/api/v1/email-accounts/?offset=0&limit=100&api_key=key", "")
	if strings.Contains(body, "gone@acme.io") || !strings.Contains(body, "keep@acme.io") {
		t.Fatalf("list after the delete: %s", body)
	}
	if c, _ := s.Campaign(cid); len(c.AccountIDs) != 1 || c.AccountIDs[0] != keep {
		t.Fatalf("campaign after the delete: %+v", c)
	}
	if code, _ := do(t, s, http.MethodGet, "/api/v1/email-accounts/"+strconv.FormatInt(gone, 10)+"/?api_key=key", ""); code != 404 {
		t.Fatalf("GET of the deleted account: %d", code)
	}
	for path, want := range map[string]int{"/_standin/accounts/" + strconv.FormatInt(gone, 10): 404, "/_standin/accounts/x": 404} {
		if code, _ := do(t, s, http.MethodDelete, path, ""); code != want {
			t.Errorf("DELETE %s: %d, want %d", path, code, want)
		}
	}
}

// The refusals Smartlead documents, as the stand-in answers them: a suspend or unsuspend of an account it
// does not have is a 400 (a read of it a 404), an archived campaign takes no account in or out (400), and
// only a connected account that is not suspended is added to a campaign (422).
func TestRefusals(t *testing.T) {
	s := New("key", "/api/v1")
	id := s.AddAccount("ivo.brandt@acme-mail.io")
	other := s.AddAccount("jun.sato@acme-mail.io")
	cid := s.AddCampaign("ACTIVE", other)
	body := `{"email_account_ids":[` + strconv.FormatInt(id, 10) + `]}`
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPut, "/api/v1/email-accounts/suspend/999999?api_key=key", "", 400},
		{http.MethodDelete, "/api/v1/email-accounts/unsuspend/999999?api_key=key", "", 400},
		{http.MethodGet, "/api/v1/email-accounts/999999/?api_key=key", "", 404},
		{http.MethodPut, "/api/v1/email-accounts/suspend/" + strconv.FormatInt(id, 10) + "?api_key=key", "", 200},
		{http.MethodPost, "/api/v1/campaigns/" + strconv.FormatInt(cid, 10) + "/email-accounts?api_key=key", body, 422},
		{http.MethodDelete, "/api/v1/email-accounts/unsuspend/" + strconv.FormatInt(id, 10) + "?api_key=key", "", 200},
		{http.MethodPost, "/api/v1/campaigns/" + strconv.FormatInt(cid, 10) + "/email-accounts?api_key=key", body, 200},
	} {
		if code, answer := do(t, s, c.method, c.path, c.body); code != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, answer, c.want)
		}
	}
	s.SetCampaignStatus(cid, CampaignArchived)
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		if code, answer := do(t, s, method, "/api/v1/campaigns/"+strconv.FormatInt(cid, 10)+"/email-accounts?api_key=key", body); code != 400 ||
			!strings.Contains(answer, "archived") {
			t.Errorf("%s on an archived campaign: %d %s", method, code, answer)
		}
	}
}

// An Applied fault carries the request out and loses its answer: the account is suspended, the client
// sees a 504.
func TestAppliedFault(t *testing.T) {
	s := New("key", "/api/v1")
	id := s.AddAccount("kai.berg@acme-mail.io")
	s.Inject(Fault{Count: 1, Code: http.StatusGatewayTimeout, Applied: true, Method: http.MethodPut})
	if code, _ := do(t, s, http.MethodPut, "/api/v1/email-accounts/suspend/"+strconv.FormatInt(id, 10)+"?api_key=key", ""); code != 504 {
		t.Fatalf("answer: %d", code)
	}
	if a, _ := s.Account(id); !a.Suspended {
		t.Fatal("the request was not carried out")
	}
	s.Inject(Fault{Count: 1, Code: http.StatusGatewayTimeout, Method: http.MethodDelete})
	if code, _ := do(t, s, http.MethodDelete, "/api/v1/email-accounts/unsuspend/"+strconv.FormatInt(id, 10)+"?api_key=key", ""); code != 504 {
		t.Fatalf("answer: %d", code)
	}
	if a, _ := s.Account(id); !a.Suspended {
		t.Fatal("a fault without Applied carried the request out")
	}
}
