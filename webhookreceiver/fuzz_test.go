package webhookreceiver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func FuzzParseEvent(f *testing.F) {
	for _, seed := range []string{flatSent, flatBounce, flatSoft, nestedSent, nestedBounce, flatReply,
		`{}`, `[]`, `null`, `{"event":1}`, `{"event_type":"SENT","from_email":"a@b.co","email_account_id":"x"}`,
		`{"event_type":"EMAIL_BOUNCE","from_email":"a@b.co","bounce_message":[{"a":[1,"4.2.2"]}]}`,
		`{"secret_key":"k","event":"SENT","email_account_id":5}`, `{"secret_key":7}`, `{"secret_key":["k"]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if key := PayloadSecretKey(body); key != "" && (!json.Valid(body) || strings.TrimSpace(key) != key) {
			t.Fatalf("secret key %q read from %q", key, body)
		}
		ev, err := ParseEvent(body)
		if err != nil {
			return
		}
		if ev.Name == "" {
			t.Fatal("parsed an event without a name")
		}
		if ev.Kind != 0 && ev.Sender == "" && ev.AccountID <= 0 {
			t.Fatal("parsed a counted event without a sender")
		}
	})
}

func FuzzWebhookHandler(f *testing.F) {
	for _, seed := range []string{flatSent, flatBounce, flatSoft, nestedSent, nestedBounce, flatReply, `{`, `{"event":"SENT"}`} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	s, _ := newTestServer(f, nil, logr.Discard())
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		headers := map[string]string{"X-Organization-Id": testOrg}
		if sign {
			headers["X-Smartlead-Signature"] = Sign(body, testSecret)
		}
		rec := post(h, string(body), headers)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("unexpected answer %d %s", rec.Code, rec.Body.String())
		}
		if !sign && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("unsigned body answered %d", rec.Code)
		}
	})
}
