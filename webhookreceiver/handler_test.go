package webhookreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

const (
	testOrg    = "org-1"
	testSecret = "whsec-test"
)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = bgv1.AddToScheme(s)
	return s
}

// newTestServer returns a receiver over a fake client holding a signed policy "acme/default" (org-1),
// an unsigned policy "open/default" (org-open, autoDiscover off), and the mailbox alice@acme.com.
func newTestServer(t testing.TB, funcs *interceptor.Funcs, log logr.Logger) (*Server, client.Client) {
	signed := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{OrganizationID: testOrg,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}},
			Mailbox: bgv1.MailboxRules{Pause: bgv1.Threshold{Bounces: 5, WithinSends: 100}}}}
	open := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "open"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(false), Smartlead: bgv1.SmartleadSettings{OrganizationID: "org-open"}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: "acme"},
		Data: map[string][]byte{"webhookSecret": []byte("previous\n" + testSecret)}}
	alice := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice-acme-com", Namespace: "acme"},
		Spec: bgv1.MailboxSpec{Email: "alice@acme.com", SmartleadAccountID: ptr.To[int64](456),
			PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
	b := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(signed, open, secret, alice).
		WithStatusSubresource(&bgv1.Mailbox{})
	for _, ix := range Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	return &Server{MaxBody: 1 << 10, Client: c, Committer: NewCommitter(c, c, 0), Log: log}, c
}

func post(h http.Handler, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func signed(body string) map[string]string {
	return map[string]string{"X-Organization-Id": testOrg, "X-Smartlead-Signature": Sign([]byte(body), testSecret)}
}

func TestWebhookAnswers(t *testing.T) {
	unavailable := &interceptor.Funcs{SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
		return apierrors.NewServiceUnavailable("etcd is down")
	}}
	big := `{"event_type":"EMAIL_SENT","from_email":"alice@acme.com","pad":"` + strings.Repeat("x", 2000) + `"}`
	cases := []struct {
		name    string
		method  string
		body    string
		headers map[string]string
		funcs   *interceptor.Funcs
		code    int
		want    string
	}{
		{"flat send recorded", "", flatSent, signed(flatSent), nil, 200, `{"status":"recorded"}`},
		{"nested send recorded by account id", "", nestedSent, signed(nestedSent), nil, 200, `{"status":"recorded"}`},
		{"reply ignored", "", flatReply, signed(flatReply), nil, 200, `{"status":"ignored"}`},
		{"wrong method", http.MethodGet, "", nil, nil, 405, "method GET not allowed"},
		{"body too large", "", big, signed(big), nil, 413, "body larger than 1024 bytes"},
		{"missing organization", "", flatSent, map[string]string{}, nil, 401, "missing x-organization-id"},
		{"unknown organization", "", flatSent, map[string]string{"X-Organization-Id": "nope"}, nil, 401, "unknown organization"},
		{"missing signature", "", flatSent, map[string]string{"X-Organization-Id": testOrg}, nil, 401, "missing X-Smartlead-Signature"},
		{"wrong signature", "", flatSent, map[string]string{"X-Organization-Id": testOrg,
			"X-Smartlead-Signature": Sign([]byte(flatSent), "wrong")}, nil, 401, "invalid X-Smartlead-Signature"},
		{"malformed JSON", "", `{"event_type":`, signed(`{"event_type":`), nil, 400, "malformed JSON"},
		{"missing event", "", `{"from_email":"a@acme.com"}`, signed(`{"from_email":"a@acme.com"}`), nil, 400, "missing event"},
		{"missing sender", "", `{"event_type":"EMAIL_SENT"}`, signed(`{"event_type":"EMAIL_SENT"}`), nil, 400, "missing sender"},
		{"unknown account id", "", `{"event":"SENT","email_account_id":99}`, signed(`{"event":"SENT","email_account_id":99}`), nil, 404, "unknown sender"},
		{"unknown sender, autoDiscover off", "", `{"event_type":"SENT","from_email":"zed@open.io"}`,
			map[string]string{"X-Organization-Id": "org-open"}, nil, 404, "autoDiscover is off"},
		{"API server unavailable", "", flatSent, signed(flatSent), unavailable, 503, "could not record the event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, _ := newTestServer(t, c.funcs, funcr.New(func(p, a string) { logs.WriteString(p + a + "\n") }, funcr.Options{Verbosity: 1}))
			var rec *httptest.ResponseRecorder
			if c.method != "" {
				req := httptest.NewRequest(c.method, WebhookPath, nil)
				rec = httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
			} else {
				rec = post(s.Handler(), c.body, c.headers)
			}
			if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.want) {
				t.Fatalf("got %d %s, want %d containing %q", rec.Code, rec.Body.String(), c.code, c.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			if c.code != 200 {
				var e errorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("error body is not {\"error\": ...}: %s", rec.Body.String())
				}
			}
			if c.code == 503 && rec.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			for _, secret := range []string{testSecret, "lead@example.org", "jane@example.org"} {
				if strings.Contains(logs.String(), secret) || strings.Contains(rec.Body.String(), secret) {
					t.Fatalf("%q leaked into logs or the answer", secret)
				}
			}
		})
	}
}

func TestWebhookRecordsOnceAndDiscovers(t *testing.T) {
	s, c := newTestServer(t, nil, logr.Discard())
	h := s.Handler()
	for i, want := range []string{"recorded", "duplicate"} {
		rec := post(h, flatBounce, signed(flatBounce))
		if !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("attempt %d: %s", i, rec.Body.String())
		}
	}
	hdr := signed(flatSent)
	hdr["X-Request-Id"] = "req-1"
	post(h, flatSent, hdr)
	post(h, strings.Replace(flatSent, "<m1@", "<m7@", 1), map[string]string{"X-Organization-Id": testOrg,
		"X-Smartlead-Signature": Sign([]byte(strings.Replace(flatSent, "<m1@", "<m7@", 1)), testSecret), "X-Request-Id": "req-1"})
	var mb bgv1.Mailbox
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "alice-acme-com"}, &mb); err != nil {
		t.Fatal(err)
	}
	if mb.Status.Sent != 1 || mb.Status.Bounced != 1 || mb.Status.Window != "1/100" || mb.Status.LastEventAt == nil {
		t.Fatalf("status %+v", mb.Status)
	}

	body := `{"event_type":"EMAIL_SENT","from_email":"New.Sender@Acme.com","email_account_id":77}`
	if rec := post(h, body, signed(body)); rec.Code != 200 {
		t.Fatalf("discovery: %d %s", rec.Code, rec.Body.String())
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "new-sender-acme-com"}, &mb); err != nil {
		t.Fatal(err)
	}
	if mb.Spec.Email != "new.sender@acme.com" || *mb.Spec.SmartleadAccountID != 77 || mb.Spec.PolicyRef.Name != "default" ||
		mb.Labels[bgv1.LabelManagedBy] != "bounceguard" || mb.Status.Sent != 1 {
		t.Fatalf("discovered mailbox %+v", mb)
	}
}
