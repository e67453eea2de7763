package standin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
