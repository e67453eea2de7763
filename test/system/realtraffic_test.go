package system_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// These tests drive the product the way Smartlead does: signed webhooks with ids as the world makes them
// (UUIDs, Gmail message ids, queue ids full of digits), through the receiver, into status, through the
// reconcilers, to the stand-in Smartlead. No test here writes a Mailbox's status itself.

const softBounceText = "452-4.2.2 The recipient's inbox is out of storage space. Please direct the\n452 4.2.2 recipient to https://support.google.com/mail/?p=OverQuotaTemp 5b1f17b1804b1-42f4c7a1b2csi5501234f8f.550 - gsmtp"

var _ = Describe("Real Smartlead traffic, end to end", func() {
	It("real hard bounces with real ids pause the mailbox in Smartlead; other shapes find it too", func() {
		f := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown)
		id := f.SL.AddAccount("rita@acme.com")
		mb := f.Mailbox("rita@acme.com", 0) // no account id: bounceguard learns it
		f.Sends("rita@acme.com", 100)
		f.Bounces("rita@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", HavePrefix("5 bounces in the last 100 sends (pause at 5/100)"))))
		Expect(mb.Status.Bounced).To(Equal(int64(5)))
		Expect(mb.Status.SoftBounced).To(BeZero(), "not one of the hard bounces may read as soft")
		Expect(mb.Status.Window).To(Equal("5/100"))
		Expect(f.Account(id).Suspended).To(BeTrue())
		Expect(mb.Status.Smartlead.AccountID).To(Equal(id))

		By("a nested-shape event finds the mailbox by the account id bounceguard learned")
		nested := map[string]any{"event": "EMAIL_SENT", "timestamp": time.Now().UTC().Format(time.RFC3339),
			"campaign_id": 123, "email_account_id": id, "lead": map[string]any{"email": "jane@example.org"},
			"email": map[string]any{"message_id": tenant.GmailMessageID()}}
		// The receiver's cache learns the id a moment after the test's direct read: a 404 is retried as
		// Smartlead would, and the same delivery then counts once.
		rid := tenant.UUID()
		Eventually(func() int { code, _ := f.Webhook(nested, rid); return code }).Should(Equal(http.StatusOK))

		By("the API-created shape names the sender email_account; its soft bounce is tallied as soft")
		code, answer := f.Webhook(map[string]any{"event_type": "BOUNCED", "email_account": "rita@acme.com",
			"lead_email": "lead@example.org", "campaign_id": 4242, "message": softBounceText,
			"timestamp": time.Now().UTC().Format(time.RFC3339)}, tenant.UUID())
		Expect(code).To(Equal(http.StatusOK), answer)
		Expect(tenant.Get(mb).(*bgv1.Mailbox).Status).To(And(HaveField("Sent", int64(101)), HaveField("SoftBounced", int64(1)),
			HaveField("Bounced", int64(5))))
	})

	It("tallies each mailbox by its own policy, from that policy's webhooks only", func() {
		f := tenant.New(bgv1.ModeObserve)
		strict := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "strict", Namespace: f.NS},
			Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeObserve,
				Mailbox: bgv1.MailboxRules{Warning: bgv1.Threshold{Bounces: 1, WithinSends: 20},
					Pause: bgv1.Threshold{Bounces: 2, WithinSends: 20}, CountSoftBounces: true},
				Smartlead: bgv1.SmartleadSettings{OrganizationID: f.Org + "-strict",
					WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
		Expect(k8s.Create(ctx, strict)).To(Succeed())
		a := f.Mailbox("anna@acme.com", 0)
		b := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ben", Namespace: f.NS},
			Spec: bgv1.MailboxSpec{Email: "ben@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "strict"}}}
		Expect(k8s.Create(ctx, b)).To(Succeed())
		Eventually(tenant.Condition(b, bgv1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))

		strictHook := *f
		strictHook.Org = f.Org + "-strict"
		for sender, via := range map[string]*tenant.Fixture{"anna@acme.com": f, "ben@acme.com": &strictHook} {
			via.Sends(sender, 20)
			via.Bounces(sender, softBounceText, softBounceText)
		}
		Eventually(tenant.Health(b)).Should(Equal(bgv1.HealthPaused))
		Expect(b.Status.Window).To(Equal("2/20"), "strict counts soft bounces, window 20")
		Expect(b.Status.Evidence()).To(Equal("2 bounces in the last 20 sends (pause at 2/20)"))
		Consistently(tenant.Health(a)).WithTimeout(300 * time.Millisecond).Should(Equal(bgv1.HealthHealthy))
		Expect(a.Status).To(And(HaveField("Window", "0/100"), HaveField("SoftBounced", int64(2)), HaveField("Bounced", int64(0))))

		By("a sender discovered through the strict policy's organization gets the policy that accepted it")
		strictHook.Sends("newbie@acme.com", 1)
		var list bgv1.MailboxList
		Expect(k8s.List(ctx, &list, client.InNamespace(f.NS))).To(Succeed())
		var found *bgv1.Mailbox
		for i := range list.Items {
			if list.Items[i].Spec.Email == "newbie@acme.com" {
				found = &list.Items[i]
			}
		}
		Expect(found).NotTo(BeNil())
		Expect(found.Spec.PolicyRef.Name).To(Equal("strict"))
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: f.NS}}
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(d), d) }).Should(Succeed())
		Expect(d.Spec.PolicyRef.Name).To(Equal("default"), "operator-created Domains take the namespace's default")
	})

	It("answers stale for an event older than --receiver-max-event-age and counts a retry once", func() {
		f := tenant.New(bgv1.ModeObserve)
		mb := f.Mailbox("sam@acme.com", 0)
		old := tenant.FlatEvent("sam@acme.com", "")
		old["event_timestamp"] = time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
		code, answer := f.Webhook(old, tenant.UUID())
		Expect(code).To(Equal(http.StatusOK))
		Expect(answer).To(MatchJSON(`{"status":"stale"}`))

		noTime := map[string]any{"event_type": "EMAIL_SENT", "from_email": "sam@acme.com", "to_email": "x@example.org"}
		rid := tenant.UUID()
		code, answer = f.Webhook(noTime, rid)
		Expect(code).To(Equal(http.StatusOK))
		Expect(answer).To(MatchJSON(`{"status":"recorded"}`))
		code, answer = f.Webhook(noTime, rid) // Smartlead's retry after 1, 5 or 30 minutes
		Expect(code).To(Equal(http.StatusOK))
		Expect(answer).To(MatchJSON(`{"status":"duplicate"}`))
		Expect(tenant.Get(mb).(*bgv1.Mailbox).Status.Sent).To(Equal(int64(1)))
	})

	It("restores a paused account past a campaign deleted meanwhile, and reports it", func() {
		f := tenant.New(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("tom@acme.com")
		other := f.SL.AddAccount("uma@acme.com")
		gone := f.SL.AddCampaign("ACTIVE", other, id)
		kept := f.SL.AddCampaign("ACTIVE", other, id)
		lonely := f.SL.AddCampaign("ACTIVE", id) // refused: the account is suspended as well
		mb := f.Mailbox("tom@acme.com", id)
		f.Sends("tom@acme.com", 100)
		f.Bounces("tom@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{gone, kept}))
		Expect(mb.Status.Smartlead.RefusedCampaignIDs).To(Equal([]int64{lonely}))

		f.SL.DeleteCampaign(gone)
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "list cleaned"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Reason", "Sending"))
		Expect(mb.Status.Smartlead).To(And(HaveField("Paused", false), HaveField("Suspended", false),
			HaveField("SkippedCampaignIDs", []int64{gone}), HaveField("RemovedCampaignIDs", BeEmpty())))
		Expect(f.Campaign(kept).AccountIDs).To(Equal([]int64{other, id}))
		Expect(f.Account(id).Suspended).To(BeFalse())
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(
			HavePrefix(fmt.Sprintf("Warning CampaignGone: campaign %d no longer exists in Smartlead (404): skipped while restoring", gone))))
	})

	It("suspends the account when a campaign removal keeps failing: the pause never stops half-way", func() {
		f := tenant.New(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
			s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Hour, time.Hour
		})
		id := f.SL.AddAccount("vic@acme.com")
		other := f.SL.AddAccount("wes@acme.com")
		c := f.SL.AddCampaign("ACTIVE", other, id)
		mb := f.Mailbox("vic@acme.com", id)
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusInternalServerError, Method: http.MethodDelete, PathPrefix: "/campaigns/"})
		f.Sends("vic@acme.com", 100)
		f.Bounces("vic@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(20 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(f.Account(id).Suspended).To(BeTrue(), "suspended instead of removed")
		Expect(mb.Status.Smartlead.LastError).To(ContainSubstring("suspended instead"))
		Expect(f.Campaign(c).AccountIDs).To(ContainElement(id))
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(HavePrefix("Warning CampaignRemovalFailed: ")))
	})

	It("keeps a paused mailbox as it is when its policy is deleted, and resumes it later with the credentials that paused it", func() {
		f := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown)
		id := f.SL.AddAccount("xena@acme.com")
		mb := f.Mailbox("xena@acme.com", id)
		f.Sends("xena@acme.com", 100)
		f.Bounces("xena@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.APIKeySecretRef).To(Equal(&bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}))

		Expect(k8s.Delete(ctx, f.Policy)).To(Succeed())
		Eventually(tenant.Condition(mb, bgv1.ConditionReady)).Should(And(HaveField("Reason", "PolicyNotFound"),
			HaveField("Message", ContainSubstring("stays paused in Smartlead"))))
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(And(HavePrefix("Warning PolicyNotFound: "),
			ContainSubstring("point spec.policyRef at an existing one"))))
		Consistently(func() int { return len(f.SL.Calls()) }).WithTimeout(500 * time.Millisecond).Should(Equal(1))
		Expect(f.Account(id).Suspended).To(BeTrue())

		By("pointing the mailbox at an Observe policy that has no API key of its own")
		observe := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "observe", Namespace: f.NS},
			Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeObserve}}
		Expect(k8s.Create(ctx, observe)).To(Succeed())
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			mb.Spec.PolicyRef.Name = "observe"
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() bool { return f.Account(id).Suspended }).Should(BeFalse())
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionFalse))
		Expect(mb.Status.Smartlead.APIKeySecretRef).To(BeNil())
		Expect(f.SL.CallStrings()).To(Equal([]string{
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id), fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id)}))
	})

	It("one policy's missing webhook Secret does not turn away the webhooks of the others", func() {
		f := tenant.New(bgv1.ModeObserve)
		mb := f.Mailbox("yuri@acme.com", 0)
		Expect(k8s.Create(ctx, &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: f.NS},
			Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: f.Org,
				WebhookSecretRef: &bgv1.SecretKeySelector{Name: "not-there", Key: "webhookSecret"}}}})).To(Succeed())
		broken := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: f.NS}}
		Eventually(tenant.Condition(broken, bgv1.ConditionReady)).Should(HaveField("Reason", "SecretNotFound"))
		f.Sends("yuri@acme.com", 3)
		Expect(tenant.Get(mb).(*bgv1.Mailbox).Status.Sent).To(Equal(int64(3)))
	})

	It("a Paused domain whose mailboxes cannot be paused in Smartlead says so; PAUSED columns count Smartlead", func() {
		f := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown)
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(f.Policy)
			f.Policy.Spec.Smartlead.APIKeySecretRef = &bgv1.SecretKeySelector{Name: "no-such-secret", Key: "apiKey"}
			return k8s.Update(ctx, f.Policy)
		})).To(Succeed())
		f.Mailbox("zed@honest.io", 0)
		b := f.Mailbox("zoe@honest.io", 0)
		for _, sender := range []string{"zed@honest.io", "zoe@honest.io"} {
			f.Sends(sender, 100)
			f.Bounces(sender, tenant.HardBounceTexts...)
		}
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "honest.io", Namespace: f.NS}}
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthPaused))
		Eventually(tenant.Condition(d, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "NotPausedInSmartlead")))
		Expect(d.Status.PausedMailboxes).To(BeZero())
		Eventually(tenant.Condition(b, bgv1.ConditionPaused)).Should(HaveField("Reason", "SmartleadUnavailable"))
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), f.Policy)).To(Succeed())
			g.Expect(f.Policy.Status).To(And(HaveField("Mailboxes", int32(2)), HaveField("Paused", int32(2)),
				HaveField("PausedMailboxes", int32(0))))
		}).Should(Succeed())
	})

	It("removes its finalizer without dropping another controller's", func() {
		f := tenant.New(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("ada@acme.com")
		mb := f.Mailbox("ada@acme.com", id)
		f.Sends("ada@acme.com", 100)
		f.Bounces("ada@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Finalizers).To(ContainElement("bounceguard.io/smartlead-pause"))
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			controllerutil.AddFinalizer(mb, "example.com/backup")
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "now"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() []string { return tenant.Get(mb).GetFinalizers() }).Should(Equal([]string{"example.com/backup"}))
		Expect(f.Account(id).Suspended).To(BeFalse())
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			controllerutil.RemoveFinalizer(mb, "example.com/backup")
			return k8s.Update(ctx, mb)
		})).To(Succeed())
	})
})

// gate asks the execution gate about an address with a bearer token ("" for none).
func gate(token, query string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, tenant.ReceiverURL+webhookreceiver.GatePath+"?"+query, nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var _ = Describe("Security, end to end", func() {
	It("the gate answers only holders of the policy's tokens, about that policy's mailboxes", func() {
		f := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown)
		tokenA, oldA := "gate-"+f.NS+"-DO-NOT-LOG", "old-gate-"+f.NS+"-DO-NOT-LOG"
		f.WithGateTokens(oldA + "\n" + tokenA)
		other := tenant.New(bgv1.ModeObserve)
		tokenB := "gate-" + other.NS + "-DO-NOT-LOG"
		other.WithGateTokens(tokenB)
		f.SL.AddAccount("gil@acme.com")
		mb := f.Mailbox("gil@acme.com", 0)
		f.Sends("gil@acme.com", 100)
		f.Bounces("gil@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))

		// The gate reads the manager's cache, which may be a moment behind the API server the test reads.
		var answer webhookreceiver.GateAnswer
		Eventually(func(g Gomega) {
			code, body := gate(tokenA, "mailbox=gil@acme.com")
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(json.Unmarshal([]byte(body), &answer)).To(Succeed())
			g.Expect(answer.Allowed).To(BeFalse())
		}).Should(Succeed())
		Expect(answer.Mode).To(Equal(bgv1.ModeEnforce))
		Expect(answer.Reasons).To(ContainElement(webhookreceiver.GateReason{Entity: "mailbox", Name: "gil-acme-com",
			Health: bgv1.HealthPaused, Message: "5 bounces in the last 100 sends (pause at 5/100)"}))
		code, _ := gate(oldA, "mailbox=gil@acme.com&namespace="+f.NS)
		Expect(code).To(Equal(http.StatusOK), "the previous token still works during a rotation")
		var body string
		code, body = gate("", "mailbox=gil@acme.com")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(body).To(MatchJSON(`{"error":"missing bearer token"}`))
		code, body = gate(tokenA+"x", "mailbox=gil@acme.com")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(body).To(MatchJSON(`{"error":"invalid bearer token"}`))
		code, body = gate(tokenB, "mailbox=gil@acme.com")
		Expect(code).To(Equal(http.StatusNotFound), "another namespace's token learns nothing")
		Expect(body).To(MatchJSON(`{"error":"unknown mailbox"}`))
		code, _ = gate(tokenB, "mailbox=gil@acme.com&namespace="+f.NS)
		Expect(code).To(Equal(http.StatusNotFound))

		By("the rotation ends: the old token is taken out of the Secret")
		gateSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: f.NS}}
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(gateSecret)
			gateSecret.Data["token"] = []byte(tokenA)
			return k8s.Update(ctx, gateSecret)
		})).To(Succeed())
		Eventually(func() int { code, _ := gate(oldA, "mailbox=gil@acme.com"); return code }).Should(Equal(http.StatusUnauthorized))
		code, _ = gate(tokenA, "mailbox=gil@acme.com")
		Expect(code).To(Equal(http.StatusOK))

		By("webhooks authenticated by the secret in the path")
		body2, _ := json.Marshal(tenant.FlatEvent("gil@acme.com", ""))
		resp, err := http.Post(tenant.ReceiverURL+webhookreceiver.WebhookPath+"/"+f.Secret, "application/json", bytes.NewReader(body2))
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), "x-organization-id is still required")
		req, _ := http.NewRequest(http.MethodPost, tenant.ReceiverURL+webhookreceiver.WebhookPath+"/"+f.Secret, bytes.NewReader(body2))
		req.Header.Set("X-Organization-Id", f.Org)
		resp, err = http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK), string(reply))
		Expect(string(reply)).To(MatchJSON(`{"status":"recorded"}`))
		req, _ = http.NewRequest(http.MethodPost, tenant.ReceiverURL+webhookreceiver.WebhookPath+"/"+f.Secret+"-guess", bytes.NewReader(body2))
		req.Header.Set("X-Organization-Id", f.Org)
		resp, err = http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		reply, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		Expect(string(reply)).NotTo(ContainSubstring(f.Secret))

		for _, secret := range []string{f.Secret, tokenA, oldA, tokenB, f.Key} {
			Expect(tenant.Logs.String()).NotTo(ContainSubstring(secret))
		}
	})

	It("the same address under equally authenticated policies of two namespaces: DuplicateAddress and 409", func() {
		f := tenant.New(bgv1.ModeObserve)
		g := tenant.New(bgv1.ModeObserve)
		a := f.Mailbox("dup@acme.com", 0)
		f.Sends("dup@acme.com", 1)
		By("another namespace claims the same organization, with its secret, and the same address")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(g.Policy)
			g.Policy.Spec.Smartlead.OrganizationID = f.Org
			return k8s.Update(ctx, g.Policy)
		})).To(Succeed())
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: g.NS}}
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(sec)
			sec.Data["webhookSecret"] = []byte(f.Secret)
			return k8s.Update(ctx, sec)
		})).To(Succeed())
		b := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "dup", Namespace: g.NS}, Spec: bgv1.MailboxSpec{Email: "dup@acme.com"}}
		Expect(k8s.Create(ctx, b)).To(Succeed())
		for _, mb := range []*bgv1.Mailbox{a, b} {
			Eventually(tenant.Condition(mb, bgv1.ConditionReady)).Should(And(HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", "DuplicateAddress")))
		}
		Eventually(func() int { code, _ := f.Webhook(tenant.FlatEvent("dup@acme.com", ""), tenant.UUID()); return code }).Should(Equal(http.StatusConflict))
		Expect(tenant.Get(a).(*bgv1.Mailbox).Status.Sent).To(Equal(int64(1)))
		Expect(tenant.Get(b).(*bgv1.Mailbox).Status.Sent).To(BeZero())

		By("the impostor goes: the mailbox is Ready again and its events count")
		Expect(k8s.Delete(ctx, b)).To(Succeed())
		Eventually(tenant.Condition(a, bgv1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		f.Sends("dup@acme.com", 1)
		Expect(tenant.Get(a).(*bgv1.Mailbox).Status.Sent).To(Equal(int64(2)))
	})
})

var _ = Describe("ZeroDailyLimit", func() {
	It("pauses by setting the daily limit to 0, keeps warm-up, and restores exactly the value read", func() {
		f := tenant.New(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionZeroDailyLimit
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("zara@acme.com")
		f.SL.SetAccountDailyLimit(id, 37)
		mb := f.Mailbox("zara@acme.com", id)
		f.Sends("zara@acme.com", 100)
		f.Bounces("zara@acme.com", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(f.Account(id)).To(And(HaveField("MessagePerDay", int32(0)), HaveField("Suspended", false)),
			"not suspended: the account keeps warming up")
		Expect(mb.Status.Smartlead).To(And(HaveField("Action", bgv1.PauseActionZeroDailyLimit),
			HaveField("OriginalDailyLimit", ptr.To[int32](37)), HaveField("DailyLimitZeroed", true)))

		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "ok"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() int32 { return f.Account(id).MessagePerDay }).Should(Equal(int32(37)))
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Reason", "Sending"))
		Expect(mb.Status.Smartlead.OriginalDailyLimit).To(BeNil())
		Expect(f.SL.CallStrings()).To(Equal([]string{
			fmt.Sprintf("GET /email-accounts/%d/", id),
			fmt.Sprintf(`POST /email-accounts/%d {"max_email_per_day":0}`, id),
			fmt.Sprintf(`POST /email-accounts/%d {"max_email_per_day":37}`, id),
		}))
	})

	It("after a crash between zeroing and recording it, restores the value read, not the 0 it would read again", func() {
		f := tenant.New(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionZeroDailyLimit
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("yves@acme.com")
		mb := f.Mailbox("yves@acme.com", id)
		f.Sends("yves@acme.com", 100)
		By("the state a manager left when it stopped right after its write of 0 landed")
		f.SL.SetAccountDailyLimit(id, 0)
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			mb.Status.Smartlead = bgv1.SmartleadState{AccountID: id, Action: bgv1.PauseActionZeroDailyLimit,
				OriginalDailyLimit: ptr.To[int32](52), LastOperation: "ReadDailyLimit",
				APIKeySecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}, BaseURL: f.Policy.Spec.Smartlead.BaseURL}
			return k8s.Status().Update(ctx, mb)
		})).To(Succeed())
		By("it is Healthy, so the half-done pause is undone: the value read is restored")
		Eventually(func() int32 { return f.Account(id).MessagePerDay }).Should(Equal(int32(52)))
		Eventually(func() *int32 { return tenant.Get(mb).(*bgv1.Mailbox).Status.Smartlead.OriginalDailyLimit }).Should(BeNil())
		Expect(f.SL.CallStrings()).To(Equal([]string{fmt.Sprintf(`POST /email-accounts/%d {"max_email_per_day":52}`, id)}))
	})
})

var _ = Describe("A person's hold", func() {
	It("pauses a healthy mailbox in Smartlead until the annotation is removed, with no cooldown", func() {
		f := tenant.New(bgv1.ModeEnforce)
		id := f.SL.AddAccount("hal@acme.com")
		mb := f.Mailbox("hal@acme.com", id)
		f.Sends("hal@acme.com", 10)
		setHold := func(reason string) {
			Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
				tenant.Get(mb)
				if reason == "" {
					delete(mb.Annotations, bgv1.AnnotationHold)
				} else {
					mb.Annotations = map[string]string{bgv1.AnnotationHold: reason}
				}
				return k8s.Update(ctx, mb)
			})).To(Succeed())
		}
		setHold("warming a new domain, ticket 4711")
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "Hold"), HaveField("Message", ContainSubstring("ticket 4711"))))
		Expect(mb.Status).To(And(HaveField("Health", bgv1.HealthPaused), HaveField("ResumeAt", BeNil()), HaveField("PauseCount", int32(0))))
		Expect(f.Account(id).Suspended).To(BeTrue())
		Consistently(tenant.Health(mb)).WithTimeout(2500*time.Millisecond).Should(Equal(bgv1.HealthPaused),
			"the policy's 2 s cooldown does not end a hold")

		setHold("")
		Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthRecovering))
		Expect(mb.Status.HealthReason).To(Equal("HoldReleased"))
		Eventually(func() bool { return f.Account(id).Suspended }).Should(BeFalse())
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(HavePrefix("Warning Hold: Healthy -> Paused: held by a person")))
	})
})

var _ = Describe("Smartlead calls off the reconcile path", func() {
	It("a key whose Smartlead hangs holds up its own pauses only: another policy's mailbox is judged and paused meanwhile", func() {
		// Tenant A: every Smartlead call hangs for 8 s; 5 mailboxes (more than the reconcile workers) cross
		// a 2/2 threshold.
		a := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown, func(s *bgv1.ProtectionPolicySpec) {
			s.Mailbox.Warning = bgv1.Threshold{Bounces: 1, WithinSends: 2}
			s.Mailbox.Pause = bgv1.Threshold{Bounces: 2, WithinSends: 2}
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
		})
		a.SL.SetLatency(8 * time.Second)
		var hanging []*bgv1.Mailbox
		for i := range 5 {
			email := fmt.Sprintf("slow%d@a-tenant.io", i)
			hanging = append(hanging, a.Mailbox(email, a.SL.AddAccount(email)))
		}
		for _, mb := range hanging {
			a.Bounces(mb.Spec.Email, tenant.HardBounceTexts[:2]...)
		}
		for _, mb := range hanging {
			Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused), "health is written without waiting for Smartlead")
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Reason", "Pausing"))
		}

		// Tenant B, another key: its mailbox crosses 5/100 while A's calls hang.
		b := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown)
		id := b.SL.AddAccount("quick@b-tenant.io")
		mb := b.Mailbox("quick@b-tenant.io", id)
		b.Sends("quick@b-tenant.io", 100)
		b.Bounces("quick@b-tenant.io", tenant.HardBounceTexts...)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(b.Account(id).Suspended).To(BeTrue())
		Expect(a.SL.Calls()).To(BeEmpty(), "B was paused before any of A's hanging calls returned")

		By("A's pauses land once its Smartlead answers")
		for _, mb := range hanging {
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(60 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		}
	})
})

// smartleadOutage is how long the Smartlead outage test keeps Smartlead down: BOUNCEGUARD_SMARTLEAD_OUTAGE
// (`make faults`: 60s), else 8 s.
func smartleadOutage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BOUNCEGUARD_SMARTLEAD_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 8 * time.Second
}

var _ = Describe("A Smartlead outage", func() {
	It("keeps health and the gate current while 20 pauses wait, then lands each pause once, within the rate limit", func() {
		f := tenant.New(bgv1.ModeEnforce, tenant.LongCooldown, func(s *bgv1.ProtectionPolicySpec) {
			s.Mailbox.Warning = bgv1.Threshold{Bounces: 1, WithinSends: 2}
			s.Mailbox.Pause = bgv1.Threshold{Bounces: 2, WithinSends: 2}
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
		})
		token := "gate-" + f.NS
		f.WithGateTokens(token)
		// Smartlead is down: first rate-limiting every call (429, Retry-After 1 s), then failing it (503).
		outage := smartleadOutage()
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusTooManyRequests, RetryAfter: "1"})
		outageStart := time.Now()
		var mbs []*bgv1.Mailbox
		ids := map[int64]bool{}
		for i := range 20 {
			email := fmt.Sprintf("out%02d@outage.io", i)
			id := f.SL.AddAccount(email)
			ids[id] = true
			mbs = append(mbs, f.Mailbox(email, id))
		}
		for _, mb := range mbs {
			f.Bounces(mb.Spec.Email, tenant.HardBounceTexts[:2]...)
		}
		By("during the outage: every health written, the gate blocks, Smartlead errors reported")
		for _, mb := range mbs {
			Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused))
			Eventually(func() bool {
				code, body := gate(token, "mailbox="+mb.Spec.Email)
				return code == http.StatusOK && strings.Contains(body, `"allowed":false`)
			}).Should(BeTrue())
		}
		Eventually(func() int {
			n := 0
			for _, mb := range mbs {
				if c := tenant.Condition(mb, bgv1.ConditionPaused)(Default); c.Reason == "SmartleadError" {
					n++
				}
			}
			return n
		}).WithTimeout(30 * time.Second).Should(BeNumerically(">", 0))
		for _, c := range f.SL.Calls() {
			Expect(c.Code).To(Equal(http.StatusTooManyRequests))
		}
		time.Sleep(max(0, outage/2-time.Since(outageStart)))
		f.SL.ClearFaults()
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusServiceUnavailable})
		calls429, fiveXXStart := len(f.SL.Calls()), time.Now()

		// The outage lasts `outage` (8 s in make test, 60 s in make faults), across several rounds of each
		// queue's backoff; the gate and health stayed current above, and no call got through meanwhile.
		// The 5xx half lasts at least half the outage however long the checks above took on a busy machine
		// (a 429's Retry-After holds the key for a second after the switch).
		time.Sleep(max(0, outage-time.Since(outageStart), outage/2-time.Since(fiveXXStart)))
		Expect(len(f.SL.Calls())).To(BeNumerically(">", calls429), "calls were retried during the 5xx half")
		for _, c := range f.SL.Calls() {
			Expect(c.Code).To(BeElementOf(http.StatusTooManyRequests, http.StatusServiceUnavailable))
		}

		By("Smartlead is back: every pause lands, once")
		f.SL.ClearFaults()
		for _, mb := range mbs {
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(2 * time.Minute).Should(HaveField("Status", metav1.ConditionTrue))
		}
		succeeded := map[string]int{}
		for _, c := range f.SL.Calls() {
			if c.Code == http.StatusOK {
				succeeded[c.Path]++
			}
		}
		Expect(succeeded).To(HaveLen(20))
		for id := range ids {
			Expect(succeeded[fmt.Sprintf("/email-accounts/suspend/%d", id)]).To(Equal(1))
			Expect(f.Account(id).Suspended).To(BeTrue())
		}
		all := f.SL.Calls()
		for i := range all { // the key's budget (the fixture's 300 a minute, burst 10) held throughout, retries included
			for j := i; j < len(all); j++ {
				Expect(float64(j-i+1)).To(BeNumerically("<=", 10+5*all[j].At.Sub(all[i].At).Seconds()+1), "calls %d..%d", i, j)
			}
		}
	})
})
