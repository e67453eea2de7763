package smartlead

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 0 ", 0}, {"-4", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestErrorTextAndClassify(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		text string
		kind error
	}{
		{400, `{"error":"Cannot remove the last email account of an ACTIVE campaign"}`, "Cannot remove the last email account of an ACTIVE campaign", ErrLastAccount},
		{400, `{"message":"email_account_ids is required"}`, "email_account_ids is required", nil},
		// A generic error with the real text in message (the shape of many Express APIs' 400s): both are read.
		{400, `{"error":"Bad Request","message":"Cannot remove the last email account of an ACTIVE campaign"}`,
			"Bad Request: Cannot remove the last email account of an ACTIVE campaign", ErrLastAccount},
		{400, `{"error":"Campaign is archived","message":"Campaign is archived"}`, "Campaign is archived", nil},
		{404, `{"error":"Email account not found"}`, "Email account not found", ErrNotFound},
		{401, `plain text`, "plain text", ErrUnauthorized},
		{422, `{"error":{"field":"x"}}`, `{"field":"x"}`, nil},
		{500, strings.Repeat("x", 400), strings.Repeat("x", 300) + "…", nil},
	} {
		text := clip(errorText([]byte(tc.body)), maxErrorText)
		if text != tc.text {
			t.Errorf("errorText(%q) = %q, want %q", tc.body, text, tc.text)
		}
		if got := classify(tc.code, text); !errors.Is(got, tc.kind) {
			t.Errorf("classify(%d, %q) = %v, want %v", tc.code, text, got, tc.kind)
		}
	}
}

// FuzzAnswers feeds arbitrary Smartlead answers to the client: it must not panic, must return an error for
// anything but a well-formed success, and must never put the API key in that error.
func FuzzAnswers(f *testing.F) {
	f.Add(200, `{"campaign_ids":[1,2]}`, "")
	f.Add(200, `[{"id":1,"from_email":"a@b.c"}]`, "")
	f.Add(429, `{"error":"slow down"}`, "0")
	f.Add(500, `<html>`, "")
	f.Add(400, `{"error":"last ACTIVE sk-fuzz-key"}`, "")
	f.Add(200, `{"campaign_ids":"nope"}`, "")
	f.Fuzz(func(t *testing.T, code int, body, retryAfter string) {
		if code < 200 || code > 599 {
			return
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
		defer srv.Close()
		const key = "sk-fuzz-key"
		c, err := New(srv.URL, key, Options{Limiter: NewLimiter(rate.Inf, 1), MaxAttempts: 2, Backoff: time.Millisecond, MaxWait: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err1 := c.Campaigns(ctx, 1)
		_, err2 := c.FindAccountID(ctx, "a@b.c")
		for _, err := range []error{err1, err2} {
			if err != nil && strings.Contains(err.Error(), key) {
				t.Fatalf("error leaks the key: %v", err)
			}
			var apiErr *APIError
			if err != nil && !errors.As(err, &apiErr) {
				t.Fatalf("error of an unexpected type: %T %v", err, err)
			}
		}
		if code >= 300 && err1 == nil {
			t.Fatalf("HTTP %d accepted as success", code)
		}
	})
}
