package tenant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:staticcheck // ST1001: the Ginkgo DSL, dot-imported as in every suite
	. "github.com/onsi/gomega"    //nolint:staticcheck // ST1001: the Gomega matchers, dot-imported as in every suite
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// Fixture is one test's namespace, policy and stand-in Smartlead.
type Fixture struct {
	// NS is the fixture's namespace.
	NS string
	// Key is the Smartlead API key the stand-in accepts (in the namespace's "smartlead" Secret).
	Key string
	// SL is the fixture's stand-in Smartlead.
	SL *standin.Server
	// Policy is the namespace's "default" ProtectionPolicy.
	Policy *bgv1.ProtectionPolicy
	// Org and Secret authenticate the fixture's webhooks (organization id = "org-" + namespace name).
	Org, Secret string
}

// New creates a namespace with an API key Secret, a stand-in Smartlead that accepts only that key,
// and a policy named "default" with second-scale cooldowns (2s, then 4s, capped at 8s) and 5 clean sends.
func New(mode bgv1.Mode, tweak ...func(*bgv1.ProtectionPolicySpec)) *Fixture {
	return NewIn(nil, mode, tweak...)
}

// NewIn is New in a namespace with the given labels.
func NewIn(labels map[string]string, mode bgv1.Mode, tweak ...func(*bgv1.ProtectionPolicySpec)) *Fixture {
	ns := NewNamespaceWith(labels)
	f := &Fixture{NS: ns, Key: "sk-live-" + ns + "-DO-NOT-LOG", Org: "org-" + ns, Secret: "whsec-" + ns + "-DO-NOT-LOG"}
	f.SL = standin.New(f.Key, "/api/v1")
	srv := httptest.NewServer(f.SL)
	DeferCleanup(srv.Close)
	Expect(Client.Create(Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns},
		StringData: map[string]string{"apiKey": f.Key, "webhookSecret": f.Secret}})).To(Succeed())
	spec := bgv1.ProtectionPolicySpec{
		Mode: mode,
		Smartlead: bgv1.SmartleadSettings{BaseURL: srv.URL + "/api/v1", OrganizationID: f.Org,
			APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"},
			// The stand-in's pace: tests count calls, not wait for Smartlead's Standard plan of 60 a minute.
			RateLimit: bgv1.SmartleadRateLimit{RequestsPerMinute: 300, Burst: 10}},
		Recovery: bgv1.RecoveryRules{Cooldown: metav1.Duration{Duration: 2 * time.Second},
			MaxCooldown: metav1.Duration{Duration: 8 * time.Second}, CleanSends: 5},
	}
	// The account sync is off unless a test turns it on (controllers/accountsync_test.go): the other tests count
	// the stand-in's calls and the namespace's Mailboxes exactly.
	spec.Smartlead.Sync.Interval = &metav1.Duration{}
	for _, t := range tweak {
		t(&spec)
	}
	f.Policy = &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}, Spec: spec}
	Expect(Client.Create(Ctx, f.Policy)).To(Succeed())
	// When the test ends its stand-in goes away: delete the namespace's policies first (cleanups run last
	// in, first out), so that its mailboxes stop calling a Smartlead that is no longer there and do not
	// hold up the workers of the tests that follow.
	DeferCleanup(func() {
		Expect(Client.DeleteAllOf(Ctx, &bgv1.ProtectionPolicy{}, client.InNamespace(ns))).To(Succeed())
	})
	return f
}

// Mailbox creates a Mailbox (with an account id in its spec when id != 0) and waits until it is Ready.
func (f *Fixture) Mailbox(email string, id int64) *bgv1.Mailbox {
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: strings.NewReplacer("@", "-", ".", "-").Replace(email), Namespace: f.NS},
		Spec: bgv1.MailboxSpec{Email: email}}
	if id != 0 {
		mb.Spec.SmartleadAccountID = ptr.To(id)
	}
	Expect(Client.Create(Ctx, mb)).To(Succeed())
	Eventually(Condition(mb, bgv1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
	return mb
}

// SetMode changes the policy's mode.
func (f *Fixture) SetMode(mode bgv1.Mode) {
	Expect(retry.RetryOnConflict(ConflictRetry, func() error {
		if err := Client.Get(Ctx, client.ObjectKeyFromObject(f.Policy), f.Policy); err != nil {
			return err
		}
		f.Policy.Spec.Mode = mode
		return Client.Update(Ctx, f.Policy)
	})).To(Succeed())
}

// Account returns the stand-in's account of that id; the spec fails when there is none.
func (f *Fixture) Account(id int64) standin.Account {
	a, ok := f.SL.Account(id)
	Expect(ok).To(BeTrue(), "account %d", id)
	return a
}

// Campaign returns the stand-in's campaign of that id; the spec fails when there is none.
func (f *Fixture) Campaign(id int64) standin.Campaign {
	c, ok := f.SL.Campaign(id)
	Expect(ok).To(BeTrue(), "campaign %d", id)
	return c
}

// ConflictRetry is patient: the controllers write the same objects as the tests, often at once.
var ConflictRetry = wait.Backoff{Steps: 100, Duration: 5 * time.Millisecond, Factor: 1.2, Jitter: 0.2, Cap: 200 * time.Millisecond}

// EventSeq numbers the events written into a status by the specs (Record), so that each has an id of its own.
var EventSeq atomic.Int64

// Record writes sends and then bounces into a mailbox's status the way the receiver does (the same tally).
func Record(mb *bgv1.Mailbox, sends, bounces int) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(ConflictRetry, func() error {
		cur := &bgv1.Mailbox{}
		if err := Client.Get(Ctx, client.ObjectKeyFromObject(mb), cur); err != nil {
			return err
		}
		now := time.Now()
		for i := 0; i < sends+bounces; i++ {
			ev := tally.Event{ID: fmt.Sprintf("ev-%d", EventSeq.Add(1)), Kind: tally.Send, At: now}
			if i >= sends {
				ev.Kind = tally.Bounce
			}
			tally.Apply(&cur.Status, ev, false)
		}
		tally.Refresh(&cur.Status, 100)
		return Client.Status().Update(Ctx, cur)
	})).To(Succeed())
}

// Health polls a Mailbox's health.
func Health(mb *bgv1.Mailbox) func(Gomega) bgv1.Health {
	return func(g Gomega) bgv1.Health {
		g.Expect(Client.Get(Ctx, client.ObjectKeyFromObject(mb), mb)).To(Succeed())
		return mb.Status.Health
	}
}

// Condition polls the condition typ of a Mailbox, Domain or ProtectionPolicy.
func Condition(obj client.Object, typ string) func(Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		g.Expect(Client.Get(Ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *bgv1.Mailbox:
			conds = o.Status.Conditions
		case *bgv1.Domain:
			conds = o.Status.Conditions
		case *bgv1.ProtectionPolicy:
			conds = o.Status.Conditions
		}
		c := meta.FindStatusCondition(conds, typ)
		g.Expect(c).NotTo(BeNil(), "Condition %s", typ)
		return *c
	}
}

// EventsFor returns "Type Reason: Note" of the Events about an object, oldest first.
func EventsFor(obj client.Object) func(Gomega) []string {
	return func(g Gomega) []string {
		var list eventsv1.EventList
		g.Expect(Client.List(Ctx, &list, client.InNamespace(obj.GetNamespace()))).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Regarding.Kind == obj.GetObjectKind().GroupVersionKind().Kind {
				out = append(out, e.Type+" "+e.Reason+": "+e.Note)
			}
		}
		return out
	}
}

// KindOf sets obj's kind (as EventsFor matches it) and returns obj.
func KindOf(obj client.Object, kind string) client.Object {
	obj.GetObjectKind().SetGroupVersionKind(bgv1.GroupVersion.WithKind(kind))
	return obj
}

// HardBounceTexts are hard bounces as receivers word them, their queue ids and timestamps full of 4xx-looking digits.
var HardBounceTexts = []string{
	"550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550-5.1.1 unnecessary spaces. For more information, go to\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d75a77b69052e-4a5f0c1e4c1si412345qtb.412 - gsmtp",
	"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup [BN8NAM12FT047.eop-nam12.prod.protection.outlook.com 2026-11-25T10:05:00.421Z 08DDB3E1C2A4F7D1]",
	"host mx.client.com[203.0.113.45] said: 550 5.1.1 <someone@client.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
	"554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta4212.mail.bf1.yahoo.com",
	"Sorry, no mailbox here by that name. (#5.1.1)",
}

var wireRand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

// UUID is a random version-4 UUID, as Smartlead's stats ids.
func UUID() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", wireRand.Uint32(), wireRand.IntN(1<<16), wireRand.IntN(1<<12),
		wireRand.IntN(1<<16), wireRand.Uint64()>>16)
}

// GmailMessageID is a random Gmail-shaped Message-ID.
func GmailMessageID() string {
	return fmt.Sprintf("<CAF%dx%d+%d-4.2.%d@mail.gmail.com>", wireRand.IntN(1e6), wireRand.IntN(1e4), wireRand.IntN(1000), wireRand.IntN(10))
}

// FlatEvent is Smartlead's flat webhook for a send or (with a bounce text) a bounce of sender.
func FlatEvent(sender, bounceText string) map[string]any {
	now := time.Now().UTC()
	ev := map[string]any{
		"webhook_id": wireRand.IntN(100000), "webhook_name": "bounceguard", "stats_id": UUID(), "event_type": "EMAIL_SENT",
		"event_timestamp": now.Format(time.RFC3339Nano), "from_email": sender,
		"to_email": fmt.Sprintf("lead%d@example.org", wireRand.IntN(1e6)), "to_name": "Lead",
		"subject": "Quick question", "campaign_id": 421 + wireRand.IntN(50), "campaign_name": "Q4 421 outreach",
		"campaign_status": "ACTIVE", "sequence_number": 1 + wireRand.IntN(4),
		"sent_message": map[string]any{"message_id": GmailMessageID(), "html": "<p>Hi</p>", "text": "Hi", "time": now.Format(time.RFC3339)},
		"app_url":      "https://app.smartlead.ai/app/master-inbox?action=INBOX&leadMap=" + UUID(), "secret_key": "",
		"metadata": map[string]any{"webhook_created_at": "2026-04-21T04:52:00.412Z"},
	}
	if bounceText != "" {
		ev["event_type"] = "EMAIL_BOUNCE"
		ev["bounce_message"] = map[string]any{"message_id": GmailMessageID(), "html": "<div>" + bounceText + "</div>",
			"text": bounceText, "time": now.Format(time.RFC3339)}
	}
	return ev
}

// Webhook posts one signed event to the manager's receiver and returns the code and the answer.
func (f *Fixture) Webhook(event map[string]any, requestID string) (int, string) {
	GinkgoHelper()
	body, err := json.Marshal(event)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, ReceiverURL+webhookreceiver.WebhookPath, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Organization-Id", f.Org)
	req.Header.Set("X-Smartlead-Signature", webhookreceiver.Sign(body, f.Secret))
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// Deliver posts an event and expects it recorded.
func (f *Fixture) Deliver(event map[string]any) {
	GinkgoHelper()
	code, answer := f.Webhook(event, UUID())
	Expect(code).To(Equal(http.StatusOK), answer)
	Expect(answer).To(ContainSubstring(`"recorded"`))
}

// Sends delivers n sends of sender.
func (f *Fixture) Sends(sender string, n int) {
	GinkgoHelper()
	for range n {
		f.Deliver(FlatEvent(sender, ""))
	}
}

// Bounces delivers one hard bounce of sender per text.
func (f *Fixture) Bounces(sender string, texts ...string) {
	GinkgoHelper()
	for _, t := range texts {
		f.Deliver(FlatEvent(sender, t))
	}
}

// Get reads obj back from the API server and returns it.
func Get(obj client.Object) client.Object {
	GinkgoHelper()
	Expect(Client.Get(Ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// LongCooldown keeps a paused mailbox paused for the whole test (an hour's cooldown).
func LongCooldown(s *bgv1.ProtectionPolicySpec) {
	s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Hour, time.Hour
}

// WithGateTokens gives the fixture's policy a gate token Secret holding tokens (newline-separated).
func (f *Fixture) WithGateTokens(tokens string) {
	GinkgoHelper()
	Expect(Client.Create(Ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: f.NS},
		StringData: map[string]string{"token": tokens}})).To(Succeed())
	Expect(retry.RetryOnConflict(ConflictRetry, func() error {
		Get(f.Policy)
		f.Policy.Spec.Gate.TokenSecretRef = &bgv1.SecretKeySelector{Name: "gate", Key: "token"}
		return Client.Update(Ctx, f.Policy)
	})).To(Succeed())
}

// NewNamespace creates a namespace of its own for one test.
func NewNamespace() string { return NewNamespaceWith(nil) }

// NewNamespaceWith creates a namespace with the given labels.
func NewNamespaceWith(labels map[string]string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bg-", Labels: labels}}
	Expect(Client.Create(Ctx, ns)).To(Succeed())
	return ns.Name
}

// DomainHealth polls a Domain's health.
func DomainHealth(d *bgv1.Domain) func(Gomega) bgv1.Health {
	return func(g Gomega) bgv1.Health {
		g.Expect(Client.Get(Ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		return d.Status.Health
	}
}
