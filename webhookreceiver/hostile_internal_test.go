package webhookreceiver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/eventlog"
)

// Hostile compositions at the receiver's boundary, over a fake API server: each test is a way two correct
// features met and let a request do what none of them allows alone.

// bounceFrom is a realistic hard bounce of sender to lead, told apart from others by its message id.
func bounceFrom(sender, messageID string) string {
	return `{"event_type":"EMAIL_BOUNCE","from_email":"` + sender + `","to_email":"lead@example.org","campaign_id":31337,` +
		`"sequence_number":2,"message_id":"` + messageID + `","event_timestamp":"2026-11-25T10:05:00Z",` +
		`"bounce_message":"550 5.1.1 <lead@example.org>: Recipient address rejected: User unknown in virtual mailbox table"}`
}

// mailboxOf reads a Mailbox from the fake API server; nil when there is none.
func mailboxOf(t testing.TB, c client.Client, ns, name string) *bgv1.Mailbox {
	t.Helper()
	var mb bgv1.Mailbox
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &mb)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &mb
}

// siblingPolicies is one namespace holding a signed policy "default" (org-1, the mailbox alice@acme.com
// with Smartlead account 456) and an unsigned trial policy "trial" on another organization, which
// auto-discovers and owns the mailbox carol@acme.com.
func siblingPolicies(t testing.TB, funcs *interceptor.Funcs) (*Server, client.Client) {
	signedDefault := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeEnforce, AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{
			OrganizationID: testOrg, WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
	trial := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "trial", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{OrganizationID: "trial-org"}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: "acme"},
		Data: map[string][]byte{"webhookSecret": []byte(testSecret)}}
	alice := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice-acme-com", Namespace: "acme"},
		Spec: bgv1.MailboxSpec{Email: "alice@acme.com", SmartleadAccountID: ptr.To[int64](456)}}
	carol := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "carol-acme-com", Namespace: "acme"},
		Spec: bgv1.MailboxSpec{Email: "carol@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "trial"}}}
	return buildTestServer(t, funcs, logr.Discard(), signedDefault, trial, secret, alice, carol)
}

// Finding: an unsigned sibling policy's organization id let anyone count bounces into (and pause) the
// signed Enforce policy's Mailbox of the same namespace, and discover Mailboxes under it.
func TestHostileUnsignedSiblingPolicyCannotCountIntoSignedPolicysMailbox(t *testing.T) {
	s, c := siblingPolicies(t, nil)
	h := s.Handler()
	trialOrg := map[string]string{"X-Organization-Id": "trial-org"}
	for i := range 5 {
		body := bounceFrom("alice@acme.com", "<forged-"+string(rune('a'+i))+"@acme.com>")
		rec := post(h, body, trialOrg)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "policy that did not authenticate") {
			t.Fatalf("forged bounce %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	nested := `{"event":"EMAIL_BOUNCE","timestamp":"2026-11-25T10:31:00Z","campaign_id":123,"email_account_id":456,` +
		`"lead":{"email":"jane@example.org"},"email":{"message_id":"abc124@smartlead.ai"}}`
	if rec := post(h, nested, trialOrg); rec.Code != http.StatusConflict {
		t.Fatalf("forged nested bounce by account id: %d %s", rec.Code, rec.Body.String())
	}
	if mb := mailboxOf(t, c, "acme", "alice-acme-com"); mb.Status.Bounced != 0 || mb.Status.Sent != 0 {
		t.Fatalf("the signed policy's Mailbox moved: sent %d, bounced %d", mb.Status.Sent, mb.Status.Bounced)
	}
	if mb := mailboxOf(t, c, "acme", bgv1.MailboxNames("alice@acme.com")[1]); mb != nil {
		t.Fatalf("a twin Mailbox was discovered for the address: %+v", mb.Spec)
	}

	// Discovery through the unsigned policy creates the Mailbox under that policy, never under "default".
	if rec := post(h, bounceFrom("bob@acme.com", "<b1@acme.com>"), trialOrg); rec.Code != http.StatusOK {
		t.Fatalf("discovery: %d %s", rec.Code, rec.Body.String())
	}
	if mb := mailboxOf(t, c, "acme", "bob-acme-com"); mb == nil || mb.PolicyName() != "trial" || mb.Status.Bounced != 1 {
		t.Fatalf("discovered under the wrong policy: %+v", mb)
	}

	// The other way round: a signed event is not counted into the unsigned policy's Mailbox either; it is
	// counted into a Mailbox of its own under the signed policy (the unsigned one may be a squat).
	body := bounceFrom("carol@acme.com", "<c1@acme.com>")
	if rec := post(h, body, signed(body)); rec.Code != http.StatusOK {
		t.Fatalf("signed event for the trial's mailbox: %d %s", rec.Code, rec.Body.String())
	}
	if mb := mailboxOf(t, c, "acme", "carol-acme-com"); mb.Status.Bounced != 0 {
		t.Fatalf("carol counted %d", mb.Status.Bounced)
	}
	if mb := mailboxOf(t, c, "acme", bgv1.MailboxNames("carol@acme.com")[1]); mb == nil || mb.PolicyName() != "default" || mb.Status.Bounced != 1 {
		t.Fatalf("the signed event was not counted under the signed policy: %+v", mb)
	}
	// Its own events still count.
	body = bounceFrom("alice@acme.com", "<a1@acme.com>")
	if rec := post(h, body, signed(body)); rec.Code != http.StatusOK {
		t.Fatalf("alice's own signed event: %d %s", rec.Code, rec.Body.String())
	}
	if mb := mailboxOf(t, c, "acme", "alice-acme-com"); mb.Status.Bounced != 1 {
		t.Fatalf("alice counted %d", mb.Status.Bounced)
	}
}

// Finding: a replay (or a Smartlead retry behind a proxy that stamps its own X-Request-Id) counted again,
// because the request id replaced the body's fingerprint.
func TestHostileFreshRequestIDDoesNotCountAgain(t *testing.T) {
	s, c := newTestServer(t, nil, logr.Discard())
	h := s.Handler()
	deliver := func(body, requestID string) string {
		hdr := signed(body)
		if requestID != "" {
			hdr["X-Request-Id"] = requestID
		}
		rec := post(h, body, hdr)
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}
	first := bounceFrom("alice@acme.com", "<CAF=1x9@mail.gmail.com>")
	// ingress-nginx's generate-request-id, Envoy's x-request-id, Istio's: a new id on each of Smartlead's retries.
	for i, want := range []struct{ id, answer string }{
		{"5f0c1b7e9d2a4c6e8f1a3b5c7d9e0f12", "recorded"},
		{"9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "duplicate"},
		{"", "duplicate"},
		{"c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e0f", "duplicate"},
	} {
		if got := deliver(first, want.id); !strings.Contains(got, want.answer) {
			t.Fatalf("delivery %d (request id %q): %s, want %s", i, want.id, got, want.answer)
		}
	}
	// Two distinct events of the same sender, lead and second, told apart only by their message ids,
	// each under a fresh proxy id: both count. Then the second's retry under the first's request id.
	second := bounceFrom("alice@acme.com", "<CAF=1x10@mail.gmail.com>")
	if got := deliver(second, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"); !strings.Contains(got, "recorded") {
		t.Fatalf("a distinct event: %s", got)
	}
	nextStep := strings.Replace(first, `"sequence_number":2`, `"sequence_number":3`, 1)
	if got := deliver(nextStep, "e1"); !strings.Contains(got, "recorded") {
		t.Fatalf("the next sequence step: %s", got)
	}
	if got := deliver(second, "5f0c1b7e9d2a4c6e8f1a3b5c7d9e0f12"); !strings.Contains(got, "duplicate") {
		t.Fatalf("a retry under a seen request id: %s", got)
	}
	if mb := mailboxOf(t, c, "acme", "alice-acme-com"); mb.Status.Bounced != 3 {
		t.Fatalf("bounced %d, want 3", mb.Status.Bounced)
	}
}

// Finding: a signed event fell to another tenant's unsigned policy on the same organization while the
// signed policy's Secret could not be read (answered 200, so Smartlead never retried).
func TestHostileUnreadableSignedSecretNeverFallsBackToUnsignedPolicy(t *testing.T) {
	const org = "shared-org"
	var secretErr error
	funcs := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok && secretErr != nil {
			return secretErr
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	victim := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "victim"},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "wh", Key: "secret"}}}}
	attacker := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "attacker"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{OrganizationID: org}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wh", Namespace: "victim"}, Data: map[string][]byte{"secret": []byte(testSecret)}}
	vera := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "vera-victim-com", Namespace: "victim"}, Spec: bgv1.MailboxSpec{Email: "vera@victim.com"}}
	s, c := buildTestServer(t, funcs, logr.Discard(), victim, attacker, secret, vera)
	h := s.Handler()
	body := bounceFrom("vera@victim.com", "<v1@victim.com>")
	hdr := map[string]string{"X-Organization-Id": org, "X-Smartlead-Signature": Sign([]byte(body), testSecret)}
	withKey := strings.Replace(body, `"campaign_id"`, `"secret_key":"`+testSecret+`","campaign_id"`, 1)
	for _, cause := range []error{apierrors.NewServiceUnavailable("etcd leader changed"),
		apierrors.NewNotFound(corev1.Resource("secrets"), "wh")} {
		secretErr = cause
		for name, try := range map[string]func() int{
			"signature": func() int { return post(h, body, hdr).Code },
			"path secret": func() int {
				return postTo(h, WebhookPath+"/"+testSecret, body, map[string]string{"X-Organization-Id": org}).Code
			},
			"secret_key": func() int { return post(h, withKey, map[string]string{"X-Organization-Id": org}).Code },
		} {
			if code := try(); code != http.StatusServiceUnavailable {
				t.Fatalf("%s while the Secret is unreadable (%v): %d", name, cause, code)
			}
		}
		rec := post(h, body, hdr)
		if rec.Header().Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		if strings.Contains(rec.Body.String(), testSecret) {
			t.Fatalf("the answer carries the secret: %s", rec.Body.String())
		}
	}
	var list bgv1.MailboxList
	if err := c.List(context.Background(), &list, client.InNamespace("attacker")); err != nil || len(list.Items) != 0 {
		t.Fatalf("the unsigned tenant's namespace got %d Mailboxes (%v)", len(list.Items), err)
	}
	secretErr = nil // the Secret is back: Smartlead's retry counts, in the right Mailbox
	if rec := post(h, body, hdr); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "recorded") {
		t.Fatalf("after the Secret came back: %d %s", rec.Code, rec.Body.String())
	}
	if mb := mailboxOf(t, c, "victim", "vera-victim-com"); mb.Status.Bounced != 1 {
		t.Fatalf("vera counted %d", mb.Status.Bounced)
	}
}

// Smartlead puts the webhook's secret key in the payload: a secret_key equal to one of the policy's
// secrets (several during a rotation) authenticates like the path secret; a wrong one is refused. The
// key reaches no log line (with --log-events and verbose logging on), no answer and no stored object.
func TestSecretKeyInThePayloadAuthenticates(t *testing.T) {
	var logs strings.Builder
	s, c := newTestServer(t, nil, funcr.New(func(p, a string) { logs.WriteString(p + a + "\n") }, funcr.Options{Verbosity: 9}))
	s.LogEvents = true
	h := s.Handler()
	withKey := func(body, key string) string {
		return strings.Replace(body, `"campaign_id"`, `"secret_key":"`+key+`","campaign_id"`, 1)
	}
	var answers strings.Builder
	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"the current secret", withKey(bounceFrom("alice@acme.com", "<k1@acme.com>"), testSecret), 200, "recorded"},
		{"the previous secret, during a rotation", withKey(bounceFrom("alice@acme.com", "<k2@acme.com>"), "previous"), 200, "recorded"},
		{"a wrong secret key", withKey(bounceFrom("alice@acme.com", "<k3@acme.com>"), "whsec-guessed-0042"), 401, "invalid secret_key"},
		{"an empty secret key is no credential", withKey(bounceFrom("alice@acme.com", "<k4@acme.com>"), ""), 401, "missing"},
		{"a discovered sender", withKey(bounceFrom("new.sender@acme.com", "<k5@acme.com>"), testSecret), 200, "recorded"},
	} {
		rec := post(h, c.body, map[string]string{"X-Organization-Id": testOrg})
		answers.WriteString(rec.Body.String())
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.want) {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body.String())
		}
	}
	var list bgv1.MailboxList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(list)
	if mb := mailboxOf(t, c, "acme", "alice-acme-com"); mb.Status.Bounced != 2 {
		t.Fatalf("alice counted %d, want 2", mb.Status.Bounced)
	}
	for _, key := range []string{testSecret, "whsec-guessed-0042"} {
		for where, text := range map[string]string{"logs": logs.String(), "answers": answers.String(), "Mailboxes": string(stored)} {
			if strings.Contains(text, key) {
				t.Errorf("the secret key %q reached the %s", key, where)
			}
		}
	}
	if !strings.Contains(logs.String(), eventlog.Message) {
		t.Fatal("no --log-events line was written: the leak check saw nothing")
	}
}

// Finding: an address squatted through an unsigned sibling policy. Anyone who knows the trial policy's
// organization id posts one unsigned event for an address the signed policy has not seen yet, and
// auto-discovery creates its Mailbox under the trial. Every real, signed event of that sender was then
// refused with 409 (a Mailbox only of a policy that did not accept it), and Smartlead does not retry a
// 4xx: the signed Enforce policy never counted — never paused — the mailbox. Now a Mailbox of a policy
// without a webhook secret never blocks an event authenticated by one: the signed policy gets a Mailbox
// of its own (the next name), and the trial's is left as it is.
func TestHostileUnsignedSiblingCannotSquatAnAddress(t *testing.T) {
	s, c := siblingPolicies(t, nil)
	h := s.Handler()
	if rec := post(h, bounceFrom("dave@acme.com", "<squat-1@acme.com>"), map[string]string{"X-Organization-Id": "trial-org"}); rec.Code != http.StatusOK {
		t.Fatalf("the squat: %d %s", rec.Code, rec.Body.String())
	}
	body := bounceFrom("dave@acme.com", "<real-1@acme.com>")
	rec := post(h, body, signed(body))
	if rec.Code != http.StatusOK {
		t.Fatalf("signed event after the squat: %d %s", rec.Code, rec.Body.String())
	}
	var list bgv1.MailboxList
	if err := c.List(context.Background(), &list, client.InNamespace("acme")); err != nil {
		t.Fatal(err)
	}
	counted := false
	for _, mb := range list.Items {
		if mb.Spec.Email == "dave@acme.com" && mb.PolicyName() == "default" && mb.Status.Bounced == 1 {
			counted = true
		}
	}
	if !counted {
		t.Fatal("the signed event was not counted under the signed policy")
	}
}

// A signed policy's Secret that holds only whitespace — emptied mid-rotation, or written from a file with
// just a newline — cannot be checked either: 503, never a fall-back to an unsigned policy of the same
// organization (which would answer 200 and discover the victim's sender in the other tenant's namespace).
func TestHostileBlankSignedSecretNeverFallsBackToUnsignedPolicy(t *testing.T) {
	const org = "shared-org"
	victim := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "victim"},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "wh", Key: "secret"}}}}
	attacker := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "attacker"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{OrganizationID: org}}}
	for _, blank := range []string{"\n", " \n\t\n"} {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wh", Namespace: "victim"}, Data: map[string][]byte{"secret": []byte(blank)}}
		s, c := buildTestServer(t, nil, logr.Discard(), victim.DeepCopy(), attacker.DeepCopy(), secret)
		body := bounceFrom("vera@victim.com", "<v1@victim.com>")
		rec := post(s.Handler(), body, map[string]string{"X-Organization-Id": org, "X-Smartlead-Signature": Sign([]byte(body), testSecret)})
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("signed event while the Secret holds %q: %d %s", blank, rec.Code, rec.Body.String())
		}
		var list bgv1.MailboxList
		if err := c.List(context.Background(), &list, client.InNamespace("attacker")); err != nil || len(list.Items) != 0 {
			t.Errorf("the unsigned tenant's namespace got %d Mailboxes (%v)", len(list.Items), err)
		}
	}
}
