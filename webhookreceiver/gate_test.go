package webhookreceiver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

func TestDecide(t *testing.T) {
	mailbox := func(h bgv1.Health, msg string, conds ...metav1.Condition) *bgv1.Mailbox {
		return &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice-acme-com"},
			Status: bgv1.MailboxStatus{Health: h, HealthMessage: msg, Conditions: conds}}
	}
	domain := func(h bgv1.Health, msg string) *bgv1.Domain {
		return &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com"}, Status: bgv1.DomainStatus{Health: h, HealthMessage: msg}}
	}
	const pausedMsg = "5 bounces in the last 100 sends (pause at 5/100)"
	const domainMsg = "3 of 6 mailboxes unhealthy (50%, pause at 50%)"
	held := metav1.Condition{Type: bgv1.ConditionPaused, Status: metav1.ConditionFalse, Reason: "SafetyLimit"}
	mbReason := GateReason{Entity: "mailbox", Name: "alice-acme-com", Health: bgv1.HealthPaused, Message: pausedMsg}
	domReason := GateReason{Entity: "domain", Name: "acme.com", Health: bgv1.HealthPaused, Message: domainMsg}
	cases := []struct {
		name    string
		mode    bgv1.Mode
		mb      *bgv1.Mailbox
		dom     *bgv1.Domain
		allowed bool
		reasons []GateReason
	}{
		{"healthy, Enforce", bgv1.ModeEnforce, mailbox(bgv1.HealthHealthy, ""), domain(bgv1.HealthHealthy, ""), true, nil},
		{"new mailbox without health, Enforce", bgv1.ModeEnforce, mailbox("", ""), nil, true, nil},
		{"paused mailbox, Observe: allowed, says why", bgv1.ModeObserve, mailbox(bgv1.HealthPaused, pausedMsg), nil, true, []GateReason{mbReason}},
		{"paused mailbox, Suggest: allowed, says why", bgv1.ModeSuggest, mailbox(bgv1.HealthPaused, pausedMsg), nil, true, []GateReason{mbReason}},
		{"paused mailbox, Enforce: blocked", bgv1.ModeEnforce, mailbox(bgv1.HealthPaused, pausedMsg), domain(bgv1.HealthHealthy, ""), false, []GateReason{mbReason}},
		{"warning mailbox, Enforce: allowed with the warning", bgv1.ModeEnforce, mailbox(bgv1.HealthWarning, "3 bounces in the last 60 sends (warning at 3/60)"), nil, true,
			[]GateReason{{Entity: "mailbox", Name: "alice-acme-com", Health: bgv1.HealthWarning, Message: "3 bounces in the last 60 sends (warning at 3/60)"}}},
		{"recovering mailbox, Enforce: allowed, it must send to recover", bgv1.ModeEnforce, mailbox(bgv1.HealthRecovering, "cooldown of 1h0m0s (pause 1) elapsed"), nil, true,
			[]GateReason{{Entity: "mailbox", Name: "alice-acme-com", Health: bgv1.HealthRecovering, Message: "cooldown of 1h0m0s (pause 1) elapsed"}}},
		{"healthy mailbox of a paused domain, Enforce: blocked by the domain", bgv1.ModeEnforce, mailbox(bgv1.HealthHealthy, ""), domain(bgv1.HealthPaused, domainMsg), false, []GateReason{domReason}},
		{"healthy mailbox of a paused domain, Suggest: allowed", bgv1.ModeSuggest, mailbox(bgv1.HealthHealthy, ""), domain(bgv1.HealthPaused, domainMsg), true, []GateReason{domReason}},
		{"both paused, Enforce: both reasons, mailbox first", bgv1.ModeEnforce, mailbox(bgv1.HealthPaused, pausedMsg), domain(bgv1.HealthPaused, domainMsg), false, []GateReason{mbReason, domReason}},
		{"recovering domain, Enforce: allowed", bgv1.ModeEnforce, mailbox(bgv1.HealthHealthy, ""), domain(bgv1.HealthRecovering, "cooldown elapsed"), true,
			[]GateReason{{Entity: "domain", Name: "acme.com", Health: bgv1.HealthRecovering, Message: "cooldown elapsed"}}},
		{"paused but held back by the safety limit, Enforce: allowed", bgv1.ModeEnforce, mailbox(bgv1.HealthPaused, pausedMsg, held), nil, true, []GateReason{mbReason}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.mode, tc.mb, tc.dom)
			if got.Allowed != tc.allowed || got.Mode != tc.mode {
				t.Errorf("allowed=%v mode=%s, want %v %s", got.Allowed, got.Mode, tc.allowed, tc.mode)
			}
			want, _ := json.Marshal(append([]GateReason{}, tc.reasons...))
			have, _ := json.Marshal(got.Reasons)
			if string(want) != string(have) {
				t.Errorf("reasons = %s\nwant      %s", have, want)
			}
		})
	}
}

func TestGateHTTP(t *testing.T) {
	s, _ := newTestServer(t, nil, logr.Discard())
	h := s.Handler()
	const healthy = `{"allowed":true,"mode":"Observe","reasons":[]}`
	const openAlice = `{"allowed":true,"mode":"Observe","reasons":[{"entity":"mailbox","name":"alice-acme-com","health":"Warning","message":"3 bounces in the last 60 sends (warning at 3/60)"}]}`
	for _, tc := range []struct {
		name, method, target, auth string
		code                       int
		body                       string
	}{
		{"no token", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "", 401, `{"error":"missing bearer token"}`},
		{"not a bearer token", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "Basic YWxpY2U6eA==", 401, `{"error":"missing bearer token"}`},
		{"wrong token", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "Bearer acme-token-x", 401, `{"error":"invalid bearer token"}`},
		{"wrong token, no mailbox: still 401", http.MethodGet, "/v1/gate", "Bearer nope", 401, `{"error":"invalid bearer token"}`},
		{"tenant's token", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "Bearer acme-token", 200, healthy},
		{"previous token during a rotation", http.MethodGet, "/v1/gate?mailbox=ALICE@acme.com&namespace=acme", "bearer old-acme-token", 200, healthy},
		{"another tenant's token finds only its own mailbox", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "Bearer open-token", 200, openAlice},
		{"another tenant's token learns nothing of acme", http.MethodGet, "/v1/gate?mailbox=alice@acme.com&namespace=acme", "Bearer open-token", 404, `{"error":"unknown mailbox"}`},
		{"a token of two policies searches both", http.MethodGet, "/v1/gate?mailbox=alice@acme.com", "Bearer shared-token", 409,
			`{"error":"the token's policies govern this address in several namespaces; pass namespace"}`},
		{"namespace narrows", http.MethodGet, "/v1/gate?mailbox=alice@acme.com&namespace=open", "Bearer shared-token", 200, openAlice},
		{"unknown mailbox", http.MethodGet, "/v1/gate?mailbox=nobody@acme.com", "Bearer acme-token", 404, `{"error":"unknown mailbox"}`},
		{"missing mailbox", http.MethodGet, "/v1/gate", "Bearer acme-token", 400, `{"error":"missing mailbox query parameter"}`},
		{"wrong method", http.MethodPost, "/v1/gate?mailbox=alice@acme.com", "Bearer acme-token", 405, `{"error":"method POST not allowed; use GET"}`},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || rec.Body.String() != tc.body+"\n" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
		if tc.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
}
