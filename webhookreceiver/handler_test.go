package webhookreceiver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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
	"github.com/bounceguard/bounceguard/internal/index"
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
	// Gate tokens: acme's (with the previous one still valid during a rotation), open's, and one both share.
	signed.Spec.Gate.TokenSecretRef = &bgv1.SecretKeySelector{Name: "gate", Key: "token"}
	open.Spec.Gate.TokenSecretRef = &bgv1.SecretKeySelector{Name: "gate", Key: "token"}
	acmeGate := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: "acme"},
		Data: map[string][]byte{"token": []byte("old-acme-token\nacme-token\nshared-token\n")}}
	openGate := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: "open"},
		Data: map[string][]byte{"token": []byte("open-token\nshared-token")}}
	openAlice := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice-acme-com", Namespace: "open"},
		Spec:   bgv1.MailboxSpec{Email: "alice@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}},
		Status: bgv1.MailboxStatus{Health: bgv1.HealthWarning, HealthMessage: "3 bounces in the last 60 sends (warning at 3/60)"}}
	return buildTestServer(t, funcs, log, signed, open, secret, alice, acmeGate, openGate, openAlice)
}

// buildTestServer serves a fake cluster holding objs, with the receiver's field indexes.
func buildTestServer(t testing.TB, funcs *interceptor.Funcs, log logr.Logger, objs ...client.Object) (*Server, client.Client) {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...).
		WithStatusSubresource(&bgv1.Mailbox{})
	for _, ix := range index.Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	return &Server{MaxBody: 1 << 10, Client: c, Committer: NewCommitter(c, c, 0), Log: log}, c
}

func post(h http.Handler, body string, headers map[string]string) *httptest.ResponseRecorder {
	return postTo(h, WebhookPath, body, headers)
}

func postTo(h http.Handler, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
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
		{"the webhook secret as the last path segment", "", flatSent, map[string]string{"X-Organization-Id": testOrg}, nil, 200,
			`{"status":"recorded"}`},
		{"a wrong webhook secret in the path", "", flatSent, map[string]string{"X-Organization-Id": testOrg}, nil, 401,
			"invalid webhook secret in the path"},
	}
	paths := map[string]string{
		"the webhook secret as the last path segment": WebhookPath + "/" + testSecret,
		"a wrong webhook secret in the path":          WebhookPath + "/" + testSecret + "x",
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
				rec = postTo(s.Handler(), cmp.Or(paths[c.name], WebhookPath), c.body, c.headers)
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

// Tenant isolation: an event goes only to the policies that authenticated it most strongly, so an unsigned
// policy on someone else's organization id never takes their signed events; the same sender under two
// equally authenticated policies is refused with 409; a bare request (no signature, no path secret) reads
// no Secret.
func TestWebhookRoutingByAuthenticationStrength(t *testing.T) {
	const org = "shared-org"
	policy := func(ns string, signed bool) *bgv1.ProtectionPolicy {
		p := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
			Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(false), Smartlead: bgv1.SmartleadSettings{OrganizationID: org}}}
		if signed {
			p.Spec.Smartlead.WebhookSecretRef = &bgv1.SecretKeySelector{Name: "wh", Key: "secret"}
		}
		return p
	}
	secret := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wh", Namespace: ns}, Data: map[string][]byte{"secret": []byte(testSecret)}}
	}
	mailbox := func(ns string) *bgv1.Mailbox {
		return &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "vera", Namespace: ns},
			Spec: bgv1.MailboxSpec{Email: "vera@victim.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
	}
	var secretReads atomic.Int32
	funcs := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok {
			secretReads.Add(1)
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	s, c := buildTestServer(t, funcs, logr.Discard(), policy("victim", true), secret("victim"), mailbox("victim"),
		policy("attacker", false), mailbox("attacker"))
	h := s.Handler()
	body := `{"event_type":"EMAIL_BOUNCE","from_email":"vera@victim.com","message_id":"<1@victim.com>","bounce_message":{"text":"550 5.1.1 no such user"}}`
	sent := func(ns string) int64 {
		var mb bgv1.Mailbox
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "vera"}, &mb); err != nil {
			t.Fatal(err)
		}
		return mb.Status.Bounced
	}
	hdr := map[string]string{"X-Organization-Id": org, "X-Smartlead-Signature": Sign([]byte(body), testSecret)}
	if rec := post(h, body, hdr); rec.Code != 200 || sent("victim") != 1 || sent("attacker") != 0 {
		t.Fatalf("signed event: %d %s; victim %d, attacker %d", rec.Code, rec.Body.String(), sent("victim"), sent("attacker"))
	}
	if rec := postTo(h, WebhookPath+"/"+testSecret, strings.Replace(body, "<1@", "<2@", 1), map[string]string{"X-Organization-Id": org}); rec.Code != 200 ||
		sent("victim") != 2 || sent("attacker") != 0 {
		t.Fatalf("path-secret event: %d %s; victim %d, attacker %d", rec.Code, rec.Body.String(), sent("victim"), sent("attacker"))
	}
	reads := secretReads.Load()
	if rec := post(h, strings.Replace(body, "<1@", "<3@", 1), map[string]string{"X-Organization-Id": org}); rec.Code != 200 || sent("attacker") != 1 {
		t.Fatalf("an unsigned event goes to the unsigned policy only: %d %s", rec.Code, rec.Body.String())
	}
	if secretReads.Load() != reads {
		t.Fatal("a request without signature or path secret read a Secret")
	}

	twin, c2 := buildTestServer(t, nil, logr.Discard(), policy("victim", true), secret("victim"), mailbox("victim"),
		policy("twin", true), secret("twin"), mailbox("twin"))
	if rec := post(twin.Handler(), body, hdr); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "more than one namespace") {
		t.Fatalf("duplicate address: %d %s", rec.Code, rec.Body.String())
	}
	var mb bgv1.Mailbox
	if err := c2.Get(context.Background(), client.ObjectKey{Namespace: "twin", Name: "vera"}, &mb); err != nil || mb.Status.Bounced != 0 {
		t.Fatalf("a refused event was recorded: %v %d", err, mb.Status.Bounced)
	}
}

// --receiver-max-in-flight: above the bound the answer is 503 with Retry-After, at once.
func TestMaxInFlight(t *testing.T) {
	s, _ := newTestServer(t, nil, logr.Discard())
	s.MaxInFlight = 2
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	s.Committer = nil
	h := s.limitInFlight(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		writeJSON(w, 200, statusBody{"recorded"})
	}))
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- post(h, flatSent, signed(flatSent)).Code }()
	}
	<-entered
	<-entered
	rec := post(h, flatSent, signed(flatSent))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "too many requests in flight") {
		t.Fatalf("third request: %d %s", rec.Code, rec.Body.String())
	}
	close(release)
	if a, b := <-done, <-done; a != 200 || b != 200 {
		t.Fatalf("the requests in flight: %d %d", a, b)
	}
	if rec := post(h, flatSent, signed(flatSent)); rec.Code != 200 {
		t.Fatalf("after the flight: %d", rec.Code)
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

// A refused request makes no write to the API server (reads come from the informer cache), and one that
// carries no credential to check, or is refused before authentication, reads no Secret either.
func TestRefusedRequestsCostNoAPICall(t *testing.T) {
	var writes, secretReads atomic.Int32
	count := func(obj client.Object) {
		if _, ok := obj.(*corev1.Secret); ok {
			secretReads.Add(1)
		}
	}
	funcs := &interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			count(obj)
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes.Add(1)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			writes.Add(1)
			return c.Patch(ctx, obj, p, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			writes.Add(1)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	}
	s, _ := newTestServer(t, funcs, logr.Discard())
	h := s.Handler()
	big := `{"event_type":"EMAIL_SENT","from_email":"alice@acme.com","pad":"` + strings.Repeat("x", 2000) + `"}`
	for _, c := range []struct {
		name         string
		path, body   string
		headers      map[string]string
		code         int
		readsSecrets bool
	}{
		{"unknown organization", WebhookPath, flatSent, map[string]string{"X-Organization-Id": "nope"}, 401, false},
		{"no signature", WebhookPath, flatSent, map[string]string{"X-Organization-Id": testOrg}, 401, false},
		{"oversized", WebhookPath, big, map[string]string{"X-Organization-Id": testOrg}, 413, false},
		{"wrong signature (checked against the cached Secret)", WebhookPath, flatSent,
			map[string]string{"X-Organization-Id": testOrg, "X-Smartlead-Signature": Sign([]byte(flatSent), "guess")}, 401, true},
		{"wrong path secret (checked against the cached Secret)", WebhookPath + "/guess", flatSent,
			map[string]string{"X-Organization-Id": testOrg}, 401, true},
		{"unknown sender, autoDiscover off", WebhookPath, `{"event_type":"SENT","from_email":"zed@open.io"}`,
			map[string]string{"X-Organization-Id": "org-open"}, 404, false},
	} {
		writes.Store(0)
		secretReads.Store(0)
		rec := postTo(h, c.path, c.body, c.headers)
		if rec.Code != c.code {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body.String())
		}
		if writes.Load() != 0 {
			t.Errorf("%s: %d writes", c.name, writes.Load())
		}
		if !c.readsSecrets && secretReads.Load() != 0 {
			t.Errorf("%s: %d Secret reads", c.name, secretReads.Load())
		}
	}
}
