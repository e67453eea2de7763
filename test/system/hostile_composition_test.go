package system_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// answer is what the receiver said to one request.
type answer struct {
	code       int
	body       string
	retryAfter string
}

// postWebhook posts body to url with headers and returns the answer.
func postWebhook(target string, headers map[string]string, body string) answer {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: string(b), retryAfter: resp.Header.Get("Retry-After")}
}

// hardBounce is a realistic hard bounce of sender, told apart from others by its message id, timed now.
func hardBounce(sender, messageID string) string {
	return fmt.Sprintf(`{"event_type":"EMAIL_BOUNCE","from_email":%q,"to_email":"lead@example.org","campaign_id":31337,`+
		`"sequence_number":2,"stats_id":"6a0b4e2c-%s","message_id":%q,"event_timestamp":%q,`+
		`"bounce_message":"550 5.1.1 <lead@example.org>: Recipient address rejected: User unknown in virtual mailbox table"}`,
		sender, strings.Trim(messageID, "<>@."), messageID, time.Now().UTC().Format(time.RFC3339))
}

// signedBy returns the headers of a webhook of org signed with secret.
func signedBy(org, secret, body string) map[string]string {
	return map[string]string{"X-Organization-Id": org, "X-Smartlead-Signature": webhookreceiver.Sign([]byte(body), secret)}
}

// mailboxIn reads a Mailbox; nil when there is none.
func mailboxIn(ns, name string) *bgv1.Mailbox {
	var mb bgv1.Mailbox
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &mb)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return &mb
}

// createObserved creates objs and waits until the manager's controllers have seen each policy and Mailbox.
func createObserved(objs ...client.Object) {
	for _, o := range objs {
		Expect(k8s.Create(context.Background(), o)).To(Succeed())
	}
	Eventually(func(g Gomega) {
		for _, o := range objs {
			switch o.(type) {
			case *bgv1.ProtectionPolicy:
				var p bgv1.ProtectionPolicy
				g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(o), &p)).To(Succeed())
				g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
			case *bgv1.Mailbox:
				var mb bgv1.Mailbox
				g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(o), &mb)).To(Succeed())
				g.Expect(mb.Status.ObservedGeneration).To(Equal(mb.Generation))
			}
		}
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
}

// newNamespace creates an empty namespace, which the suite's manager leaves to the spec's own.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "hostile-", Labels: ownManagers}}
	Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

func webhookSecret(ns, name, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{"webhookSecret": value}}
}

func signedPolicy(ns, name, org, secretName string) *bgv1.ProtectionPolicy {
	return &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: secretName, Key: "webhookSecret"}}}}
}

func unsignedPolicy(ns, name, org string) *bgv1.ProtectionPolicy {
	return &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org}}}
}

func mailboxFor(ns, email, policy string) *bgv1.Mailbox {
	return &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: bgv1.MailboxNames(email)[0], Namespace: ns},
		Spec: bgv1.MailboxSpec{Email: email, PolicyRef: bgv1.LocalPolicyReference{Name: policy}}}
}

// stampingProxy is a reverse proxy in front of the receiver that does what ingress-nginx
// (generate-request-id), Envoy and Istio do: a fresh X-Request-Id on every request, and forwarding headers.
func stampingProxy(receiver string) *httptest.Server {
	target, err := url.Parse("http://" + receiver)
	Expect(err).NotTo(HaveOccurred())
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.SetXForwarded()
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		r.Out.Header.Set("X-Request-Id", hex.EncodeToString(id))
		r.Out.Header.Set("X-Forwarded-Proto", "https")
		r.Out.Header.Set("X-Real-Ip", "203.0.113.7")
	}}
	return httptest.NewServer(rp)
}

var _ = Describe("hostile compositions at the receiver", Ordered, func() {
	var addr, hook string
	BeforeAll(func() {
		addr = freeAddr()
		hook = "http://" + addr + webhookreceiver.WebhookPath
		stop := startManager(addr, 2*time.Millisecond)
		DeferCleanup(func() { stop() })
	})

	It("an unsigned sibling policy's organization neither counts into nor discovers under the signed policy", func() {
		ns := newNamespace()
		createObserved(webhookSecret(ns, "smartlead", "whsec-signed-31"),
			signedPolicy(ns, "default", "org-signed-31", "smartlead"), unsignedPolicy(ns, "trial", "org-trial-31"),
			mailboxFor(ns, "alice@acme-31.com", ""), mailboxFor(ns, "carol@acme-31.com", "trial"))
		trial := map[string]string{"X-Organization-Id": "org-trial-31"}
		for i := range 5 {
			a := postWebhook(hook, trial, hardBounce("alice@acme-31.com", fmt.Sprintf("<forged-%d@acme-31.com>", i)))
			Expect(a.code).To(Equal(http.StatusConflict), a.body)
		}
		Expect(mailboxIn(ns, "alice-acme-31-com").Status.Bounced).To(BeZero())
		// Discovery through the trial policy: under the trial, never under the signed "default".
		a := postWebhook(hook, trial, hardBounce("bob@acme-31.com", "<b1@acme-31.com>"))
		Expect(a.code).To(Equal(http.StatusOK), a.body)
		Expect(mailboxIn(ns, "bob-acme-31-com").Spec.PolicyRef.Name).To(Equal("trial"))
		// A signed event for the trial's Mailbox is not counted there: the trial's Mailbox may be a squat, so
		// the signed policy gets one of its own under the next name, and the event counts there.
		body := hardBounce("carol@acme-31.com", "<c1@acme-31.com>")
		a = postWebhook(hook, signedBy("org-signed-31", "whsec-signed-31", body), body)
		Expect(a.code).To(Equal(http.StatusOK), a.body)
		Expect(mailboxIn(ns, "carol-acme-31-com").Status.Bounced).To(BeZero())
		twin := mailboxIn(ns, bgv1.MailboxNames("carol@acme-31.com")[1])
		Expect(twin.Spec.PolicyRef.Name).To(Equal("default"))
		Expect(twin.Status.Bounced).To(Equal(int64(1)))
		var list bgv1.MailboxList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(HaveLen(4))
		// Each policy's own events count.
		body = hardBounce("alice@acme-31.com", "<a1@acme-31.com>")
		Expect(postWebhook(hook, signedBy("org-signed-31", "whsec-signed-31", body), body).code).To(Equal(http.StatusOK))
		Expect(postWebhook(hook, trial, hardBounce("carol@acme-31.com", "<c2@acme-31.com>")).code).To(Equal(http.StatusOK))
		Expect(mailboxIn(ns, "alice-acme-31-com").Status.Bounced).To(Equal(int64(1)))
		Expect(mailboxIn(ns, "carol-acme-31-com").Status.Bounced).To(Equal(int64(1)))
	})

	It("a Smartlead retry behind a proxy that stamps its own request id counts once; distinct events count", func() {
		ns, emails := newTenant("org-proxied-32", "whsec-proxied-32", 1, nil)
		proxy := stampingProxy(addr)
		defer proxy.Close()
		via := proxy.URL + webhookreceiver.WebhookPath
		first := hardBounce(emails[0], "<CAF=1x9@mail.gmail.com>")
		for i, want := range []string{"recorded", "duplicate", "duplicate"} { // Smartlead's retries after 1, 5 and 30 min
			a := postWebhook(via, signedBy("org-proxied-32", "whsec-proxied-32", first), first)
			Expect(a.code).To(Equal(http.StatusOK), a.body)
			Expect(a.body).To(ContainSubstring(want), "delivery %d", i)
		}
		second := hardBounce(emails[0], "<CAF=1x10@mail.gmail.com>")
		a := postWebhook(via, signedBy("org-proxied-32", "whsec-proxied-32", second), second)
		Expect(a.body).To(ContainSubstring("recorded"))
		Expect(tallies(ns)[emails[0]]).To(Equal([2]int64{0, 2}))
	})

	It("a signed policy's Secret deleted and recreated mid-stream: 503, never the unsigned tenant, then counted", func() {
		victim, other := newNamespace(), newNamespace()
		const org, secret = "org-rotating-33", "whsec-rotating-33"
		createObserved(webhookSecret(victim, "smartlead", secret), signedPolicy(victim, "default", org, "smartlead"),
			mailboxFor(victim, "vera@victim-33.com", ""), unsignedPolicy(other, "default", org))
		body := hardBounce("vera@victim-33.com", "<v0@victim-33.com>")
		Expect(postWebhook(hook, signedBy(org, secret, body), body).code).To(Equal(http.StatusOK))

		Expect(k8s.Delete(context.Background(), webhookSecret(victim, "smartlead", ""))).To(Succeed())
		counted := int64(1) // events recorded before the receiver learned of the deletion
		seq := 0
		Eventually(func() int {
			seq++
			body := hardBounce("vera@victim-33.com", fmt.Sprintf("<v%d@victim-33.com>", seq))
			a := postWebhook(hook, signedBy(org, secret, body), body)
			if a.code == http.StatusOK {
				counted++
			}
			if a.code == http.StatusServiceUnavailable {
				Expect(a.retryAfter).NotTo(BeEmpty())
				Expect(a.body).NotTo(ContainSubstring(secret))
			}
			return a.code
		}, 30*time.Second, 100*time.Millisecond).Should(Equal(http.StatusServiceUnavailable))
		// The same with the secret in the path and as the payload's secret_key.
		pending := hardBounce("vera@victim-33.com", "<pending@victim-33.com>")
		Expect(postWebhook(hook+"/"+secret, map[string]string{"X-Organization-Id": org}, pending).code).To(Equal(http.StatusServiceUnavailable))
		withKey := strings.Replace(pending, `"campaign_id"`, `"secret_key":"`+secret+`","campaign_id"`, 1)
		Expect(postWebhook(hook, map[string]string{"X-Organization-Id": org}, withKey).code).To(Equal(http.StatusServiceUnavailable))
		var list bgv1.MailboxList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(other))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "the unsigned tenant's namespace got the signed events")

		// The Secret is back (a delete-and-recreate rotation): Smartlead's retry of the pending event counts.
		Expect(k8s.Create(context.Background(), webhookSecret(victim, "smartlead", secret))).To(Succeed())
		Eventually(func() int { return postWebhook(hook, signedBy(org, secret, pending), pending).code },
			30*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
		Expect(postWebhook(hook, signedBy(org, secret, pending), pending).body).To(ContainSubstring("duplicate"))
		Expect(mailboxIn(victim, "vera-victim-33-com").Status.Bounced).To(Equal(counted + 1))
		Expect(k8s.List(context.Background(), &list, client.InNamespace(other))).To(Succeed())
		Expect(list.Items).To(BeEmpty())
	})

	It("the gate of one policy says nothing of a sibling policy's Mailbox in the same namespace", func() {
		ns := newNamespace()
		trial := unsignedPolicy(ns, "trial", "org-gate-34")
		trial.Spec.Gate.TokenSecretRef = &bgv1.SecretKeySelector{Name: "gate", Key: "token"}
		Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: ns},
			StringData: map[string]string{"token": "gate-token-trial-34"}})).To(Succeed())
		createObserved(webhookSecret(ns, "smartlead", "whsec-gate-34"), signedPolicy(ns, "default", "org-gate-34s", "smartlead"),
			trial, mailboxFor(ns, "alice@acme-34.com", ""), mailboxFor(ns, "carol@acme-34.com", "trial"))
		ask := func(email string) int {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+webhookreceiver.GatePath+"?mailbox="+url.QueryEscape(email), nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer gate-token-trial-34")
			resp, err := httpClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			return resp.StatusCode
		}
		Eventually(func() int { return ask("carol@acme-34.com") }, 30*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
		Expect(ask("alice@acme-34.com")).To(Equal(http.StatusNotFound))
	})
})
