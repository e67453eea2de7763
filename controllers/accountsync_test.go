package controllers_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// syncing turns the fixture policy's account sync on, with an interval no test outlives: each test
// asks for its syncs with the bounceguard.io/sync annotation, as a person would.
func syncing(drift bgv1.DriftAction) func(*bgv1.ProtectionPolicySpec) {
	return func(s *bgv1.ProtectionPolicySpec) {
		s.Smartlead.Sync = bgv1.SyncSettings{Interval: &metav1.Duration{Duration: time.Hour}, Drift: drift}
	}
}

// syncNow sets a new value of the policy's bounceguard.io/sync annotation and waits until the sync it
// asked for has been recorded without error.
func (f *fixture) syncNow() {
	GinkgoHelper()
	value := fmt.Sprint(time.Now().UnixNano())
	Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
		p := &bgv1.ProtectionPolicy{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), p); err != nil {
			return err
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[bgv1.AnnotationSync] = value
		return k8s.Update(ctx, p)
	})).To(Succeed())
	Eventually(func(g Gomega) {
		p := &bgv1.ProtectionPolicy{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), p)).To(Succeed())
		g.Expect(p.Status.SyncRequest).To(Equal(value))
		g.Expect(p.Status.LastSyncError).To(BeEmpty())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// mailboxFor finds the namespace's Mailbox of an address.
func (f *fixture) mailboxFor(email string) func(Gomega) *bgv1.Mailbox {
	return func(g Gomega) *bgv1.Mailbox {
		var list bgv1.MailboxList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(f.NS))).To(Succeed())
		for i := range list.Items {
			if list.Items[i].Spec.Email == email {
				return &list.Items[i]
			}
		}
		return nil
	}
}

var _ = Describe("Account sync", func() {
	It("creates the Mailboxes of accounts without one, fills in account ids, flags accounts that are gone and mailboxes it cannot see, writing only what changed", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown, syncing(bgv1.DriftReport))
		By("an organization of three accounts, one already with a Mailbox that does not know its id")
		alice := f.SL.AddAccount("alice@acme.com")
		bob := f.SL.AddAccount("Bob.Smith@Acme.com") // Smartlead keeps the case a person typed
		carol := f.SL.AddAccount("carol@acme.com")
		aliceMB := f.Mailbox("alice@acme.com", 0)
		f.syncNow()

		var bobMB *bgv1.Mailbox
		Eventually(func(g Gomega) {
			bobMB = f.mailboxFor("bob.smith@acme.com")(g)
			g.Expect(bobMB).NotTo(BeNil())
		}).Should(Succeed())
		Expect(bobMB.Name).To(Equal("bob-smith-acme-com"))
		Expect(bobMB.Labels).To(HaveKeyWithValue(bgv1.LabelManagedBy, bgv1.ManagedByValue))
		Expect(bobMB.Spec.SmartleadAccountID).To(HaveValue(Equal(bob)))
		Expect(bobMB.Spec.PolicyRef.Name).To(Equal("default"))
		carolMB := &bgv1.Mailbox{}
		Eventually(func(g Gomega) { carolMB = f.mailboxFor("carol@acme.com")(g); g.Expect(carolMB).NotTo(BeNil()) }).Should(Succeed())

		By("the existing Mailbox learns its account from the sync, kept apart from bounceguard's own record")
		Eventually(func() *bgv1.AccountState { tenant.Get(aliceMB); return aliceMB.Status.Account }).Should(
			HaveValue(Equal(bgv1.AccountState{ID: alice, DailyLimit: 40, WarmupEnabled: true, SMTPOK: true, IMAPOK: true})))
		Expect(aliceMB.Spec.SmartleadAccountID).To(BeNil(), "a sync never writes a person's spec")
		Expect(aliceMB.Status.Smartlead).To(BeZero(), "a sync never writes status.smartlead")
		Eventually(func(g Gomega) { tenant.Get(carolMB); g.Expect(carolMB.Status.Account).NotTo(BeNil()) }).Should(Succeed())
		policy := tenant.Get(f.Policy).(*bgv1.ProtectionPolicy)
		Expect(policy.Status.Accounts).To(Equal(int32(3)))
		Expect(policy.Status.LastSyncTime).NotTo(BeNil())

		By("a person deletes carol's account in Smartlead: AccountFound=False, the Mailbox stays")
		Expect(f.SL.DeleteAccount(carol)).To(BeTrue())
		By("and bob sends 40 today, none of them with the webhook")
		f.SL.EditAccount(bob, func(a *standin.Account) { a.DailySentCount = 40 })
		f.syncNow()
		Eventually(tenant.Condition(carolMB, bgv1.ConditionAccountFound)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "AccountMissing"), HaveField("Message", ContainSubstring(fmt.Sprintf("account %d", carol)))))
		Eventually(tenant.EventsFor(tenant.KindOf(carolMB, "Mailbox"))).Should(ContainElement(HavePrefix("Warning AccountNotFound:")))
		Eventually(tenant.Condition(bobMB, bgv1.ConditionUnmonitored)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", HavePrefix("Smartlead counts 40 sends today, bounceguard received 0"))))
		Expect(tenant.Get(aliceMB).(*bgv1.Mailbox).Status.Conditions).NotTo(ContainElement(HaveField("Type", bgv1.ConditionUnmonitored)),
			"alice sent nothing: nothing to see")

		By("bob's campaigns get the webhook: 35 signed sends through the receiver close the gap")
		f.Sends("bob.smith@acme.com", 35)
		f.syncNow()
		Eventually(tenant.Condition(bobMB, bgv1.ConditionUnmonitored)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "Covered")))

		By("a sync that finds nothing new writes nothing")
		versions := func() map[string]string {
			var list bgv1.MailboxList
			Expect(k8s.List(ctx, &list, client.InNamespace(f.NS))).To(Succeed())
			out := map[string]string{}
			for _, mb := range list.Items {
				out[mb.Name] = mb.ResourceVersion
			}
			return out
		}
		Eventually(func(g Gomega) { tenant.Get(bobMB); g.Expect(bobMB.Status.Account.Gap).To(BeNil()) }).Should(Succeed())
		time.Sleep(time.Second) // let the reconciles of the last sync's writes settle
		before := versions()
		Expect(before).To(HaveLen(3))
		f.syncNow()
		Consistently(versions).WithTimeout(time.Second).Should(Equal(before))
		for _, c := range f.SL.Calls() {
			Expect(c.Method+" "+c.Path).To(Equal("GET /email-accounts/"), "a sync of accounts bounceguard does not hold paused only lists them")
		}
	})

	It("reports a drift, reapplies the pause once in Reapply, and leaves a second drift to a person; the drift is one grouped Slack message", func() {
		sink := &slackSink{}
		srv := httptest.NewServer(sink)
		DeferCleanup(srv.Close)
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown, syncing(bgv1.DriftReapply), func(s *bgv1.ProtectionPolicySpec) {
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
			s.Notifications = []bgv1.NotificationTarget{{Type: bgv1.NotificationSlack,
				URLSecretRef: bgv1.SecretKeySelector{Name: "alerts", Key: "slackURL"}, Events: []bgv1.NotificationEvent{bgv1.NotifyDrift}}}
		})
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alerts", Namespace: f.NS},
			StringData: map[string]string{"slackURL": srv.URL + "/services/T0/B0/drift-url-token"}})).To(Succeed())
		mbs, ids := f.fleet("drift.io", 2)
		By("a sync while they send: Smartlead shows them unsuspended, rightly")
		f.syncNow()
		Eventually(func(g Gomega) {
			tenant.Get(mbs[0])
			g.Expect(mbs[0].Status.Account).To(HaveValue(HaveField("Suspended", false)))
		}).Should(Succeed())

		By("both mailboxes bounce past the threshold through the receiver and are suspended")
		for _, mb := range mbs {
			f.Sends(mb.Spec.Email, 95)
			f.Bounces(mb.Spec.Email, tenant.HardBounceTexts...)
		}
		Eventually(func() []bool { return f.suspended(ids) }).Should(Equal([]bool{true, true}))
		for _, mb := range mbs {
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		}
		noDrift := func() []string {
			var types []string
			for _, c := range tenant.Get(mbs[0]).(*bgv1.Mailbox).Status.Conditions {
				types = append(types, c.Type)
			}
			return types
		}
		Consistently(noDrift).WithTimeout(time.Second).ShouldNot(ContainElement(bgv1.ConditionDrifted),
			"the account read before the pause is no drift")
		f.syncNow()
		Eventually(func(g Gomega) {
			tenant.Get(mbs[0])
			g.Expect(mbs[0].Status.Account).To(HaveValue(HaveField("Suspended", true)))
		}).Should(Succeed())
		Expect(mbs[0].Status.Conditions).NotTo(ContainElement(HaveField("Type", bgv1.ConditionDrifted)), "in step: nothing to say")

		By("a person un-suspends both in Smartlead's UI")
		for _, id := range ids {
			f.SL.EditAccount(id, func(a *standin.Account) { a.Suspended = false })
		}
		f.SL.ResetCalls()
		f.syncNow()
		By("the sync finds the drift; Reapply suspends each again, once")
		Eventually(func() []bool { return f.suspended(ids) }).Should(Equal([]bool{true, true}))
		for _, mb := range mbs {
			Eventually(tenant.Condition(mb, bgv1.ConditionDrifted)).Should(And(HaveField("Status", metav1.ConditionTrue),
				HaveField("Reason", "Reapplied"), HaveField("Message", HavePrefix("Smartlead shows it sending again: unsuspended"))))
			Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElements(HavePrefix("Warning Drifted:"),
				HavePrefix("Warning PauseReapplied:")))
		}
		Eventually(func() []string { return f.SL.CallStrings("PUT") }).Should(ConsistOf(
			fmt.Sprintf("PUT /email-accounts/suspend/%d", ids[0]), fmt.Sprintf("PUT /email-accounts/suspend/%d", ids[1])))

		By("one Slack message announces both drifts")
		Eventually(sink.messages).Should(HaveLen(1))
		msg := sink.messages()[0]
		Expect(noticeLine.FindAllStringSubmatch(msg, -1)).To(ConsistOf(
			[]string{"• Drift: box0@drift.io", "Drift", "box0@drift.io"}, []string{"• Drift: box1@drift.io", "Drift", "box1@drift.io"}))
		Expect(msg).NotTo(ContainSubstring("drift-url-token"))
		Expect(msg).NotTo(ContainSubstring(f.Key))

		By("the next sync sees the states agree: the drift clears")
		f.syncNow()
		Eventually(tenant.Condition(mbs[0], bgv1.ConditionDrifted)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "InStep")))

		By("a second drift in the same pause is reported, not fought")
		f.SL.EditAccount(ids[0], func(a *standin.Account) { a.Suspended = false })
		f.SL.ResetCalls()
		f.syncNow()
		Eventually(tenant.Condition(mbs[0], bgv1.ConditionDrifted)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", ContainSubstring("a further drift is left to a person"))))
		Consistently(func() []string { return f.SL.CallStrings("PUT") }).WithTimeout(2 * time.Second).Should(BeEmpty())
		Expect(f.Account(ids[0]).Suspended).To(BeFalse())
		Eventually(sink.messages).Should(HaveLen(2), "the second drift is announced too")
	})

	It("in Report mode leaves a drifted ZeroDailyLimit pause to a person, and the resume restores the limit read before the pause", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown, syncing(bgv1.DriftReport), func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionZeroDailyLimit
		})
		id := f.SL.AddAccount("zed@zero.io")
		f.SL.SetAccountDailyLimit(id, 52)
		mb := f.Mailbox("zed@zero.io", id)
		f.Sends("zed@zero.io", 95)
		f.Bounces("zed@zero.io", tenant.HardBounceTexts...)
		Eventually(func() int32 { return f.Account(id).MessagePerDay }).Should(BeZero())
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))

		By("a person raises the limit in Smartlead's UI")
		f.SL.EditAccount(id, func(a *standin.Account) { a.MessagePerDay = 30 })
		f.SL.ResetCalls()
		f.syncNow()
		Eventually(tenant.Condition(mb, bgv1.ConditionDrifted)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "SendingAgain"), HaveField("Message", And(ContainSubstring("daily limit 30"), ContainSubstring("left to a person")))))
		Consistently(func() []string { return f.SL.CallStrings("POST", "PUT") }).WithTimeout(time.Second).Should(BeEmpty())

		By("the person resumes it here: the limit read before the pause comes back, the drift goes")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			tenant.Get(mb)
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "checked"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() int32 { return f.Account(id).MessagePerDay }).Should(Equal(int32(52)))
		Eventually(func() []string {
			tenant.Get(mb)
			var types []string
			for _, c := range mb.Status.Conditions {
				types = append(types, c.Type)
			}
			return types
		}).ShouldNot(ContainElement(bgv1.ConditionDrifted))
		Expect(strings.Join(f.SL.CallStrings("POST"), "\n")).To(ContainSubstring(`{"max_email_per_day":52}`))
	})
})
