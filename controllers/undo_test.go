package controllers_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// These tests drive pauses through the real path (signed webhooks, the receiver, the reconcilers, the
// stand-in Smartlead) into what Smartlead answers when the world moved on meanwhile: a campaign archived,
// an account deleted, an answer lost after the call took effect.

// resumeByHand sets the resume annotation, as a person would.
func resumeByHand(mb *bgv1.Mailbox, why string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
		tenant.Get(mb)
		if mb.Annotations == nil {
			mb.Annotations = map[string]string{}
		}
		mb.Annotations[bgv1.AnnotationResume] = why
		return k8s.Update(ctx, mb)
	})).To(Succeed())
}

// crossThreshold sends 100 clean sends and five real hard bounces through the receiver.
func (f *fixture) crossThreshold(sender string) {
	GinkgoHelper()
	f.Sends(sender, 100)
	f.Bounces(sender, tenant.HardBounceTexts...)
}

// pausedMailbox makes an account and its Mailbox, and pauses it through the receiver.
func (f *fixture) pausedMailbox(email string) (*bgv1.Mailbox, int64) {
	GinkgoHelper()
	id := f.SL.AddAccount(email)
	mb := f.Mailbox(email, id)
	f.crossThreshold(email)
	Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
	return mb, id
}

// deleted reports whether an object is gone from the API server.
func deleted(obj client.Object) func() bool {
	return func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)) }
}

// histogram reads a histogram's sample count and sum from controller-runtime's metrics registry.
func histogram(name string) (uint64, float64) {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == name {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

var _ = Describe("Pauses that can always be undone", func() {
	It("deleting a mailbox paused out of a campaign archived meanwhile resumes the rest and does not hang", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("nadia.olsen@acme-mail.io")
		other := f.SL.AddAccount("omar.reed@acme-mail.io")
		archived := f.SL.AddCampaign("ACTIVE", other, id)
		kept := f.SL.AddCampaign("ACTIVE", other, id)
		lonely := f.SL.AddCampaign("ACTIVE", id) // refused: suspended as well
		mb := f.Mailbox("nadia.olsen@acme-mail.io", id)
		f.crossThreshold("nadia.olsen@acme-mail.io")
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{archived, kept}))

		By("a person archives a campaign in Smartlead, then deletes the Mailbox")
		Expect(f.SL.SetCampaignStatus(archived, standin.CampaignArchived)).To(BeTrue())
		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(deleted(mb)).Should(BeTrue(), "kubectl delete mailbox hangs")
		Expect(f.Account(id).Suspended).To(BeFalse())
		Expect(f.Campaign(kept).AccountIDs).To(Equal([]int64{other, id}))
		Expect(f.Campaign(archived).AccountIDs).To(Equal([]int64{other}))
		Expect(f.Campaign(lonely).AccountIDs).To(Equal([]int64{id}))
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElements(
			HavePrefix(fmt.Sprintf("Warning CampaignRefused: campaign %d refused for good while restoring account %d (smartlead AddToCampaign: HTTP 400", archived, id)),
			HavePrefix(fmt.Sprintf("Normal ResumedInSmartlead: resumed in Smartlead (account %d) before the Mailbox is deleted", id))))
	})

	It("an account deleted in Smartlead while paused ends the pause: AccountFound=False, no safety-limit room held, no hanging delete", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Automatic = ptr.To(false)
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 50, MinimumMailboxes: 2}
		})
		burnt := f.SL.AddAccount("pia.lund@acme-mail.io")
		next := f.SL.AddAccount("quinn.ames@acme-mail.io")
		mb := f.Mailbox("pia.lund@acme-mail.io", burnt)
		mb2 := f.Mailbox("quinn.ames@acme-mail.io", next)
		f.crossThreshold("pia.lund@acme-mail.io")
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))

		By("a person deletes the burnt mailbox in Smartlead, then resumes it here")
		Expect(f.SL.DeleteAccount(burnt)).To(BeTrue())
		resumeByHand(mb, "account deleted in Smartlead")
		Eventually(tenant.Condition(mb, bgv1.ConditionAccountFound)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring(fmt.Sprintf("has no account %d any more (deleted there?)", burnt)))))
		Expect(mb.Status.Smartlead).To(And(HaveField("AccountGone", true), HaveField("Paused", false),
			HaveField("Suspended", false), HaveField("SuspendRequested", false), HaveField("Action", bgv1.PauseAction(""))))
		Eventually(func() []string { return tenant.Get(mb).GetFinalizers() }).Should(BeEmpty())
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(
			HavePrefix(fmt.Sprintf("Warning AccountGone: Smartlead has no account %d any more (deleted there?): the pause record ended", burnt))))

		By("the gone account holds no place under the safety limit: the next mailbox is paused")
		f.crossThreshold("quinn.ames@acme-mail.io")
		Eventually(tenant.Condition(mb2, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(f.Account(next).Suspended).To(BeTrue())

		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(deleted(mb)).Should(BeTrue())
	})

	It("a Mailbox deleted after its account was deleted in Smartlead lets go at once", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown)
		mb, id := f.pausedMailbox("rosa.vidal@acme-mail.io")
		Expect(f.SL.DeleteAccount(id)).To(BeTrue())
		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(deleted(mb)).Should(BeTrue(), "deleting the Mailbox hangs on the deleted account")
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(
			HavePrefix(fmt.Sprintf("Warning AccountGone: Smartlead has no account %d any more", id))))
	})

	It("a Mailbox whose resume Smartlead refuses for good is deleted all the same, and a person is told", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown)
		mb, id := f.pausedMailbox("lev.marsh@acme-mail.io")
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusBadRequest, Method: http.MethodDelete, PathPrefix: "/email-accounts/unsuspend/"})
		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(deleted(mb)).Should(BeTrue(), "deleting the Mailbox hangs on a refused unsuspend")
		Expect(f.Account(id).Suspended).To(BeTrue(), "the account still exists: it was not taken for gone")
		Eventually(tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))).Should(ContainElement(And(HavePrefix("Warning SmartleadCallFailed: "),
			ContainSubstring("Smartlead refused the resume for good"), ContainSubstring("resume it in Smartlead by hand"))))
	})

	It("a suspend that took effect but whose answer was lost is undone on resume", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("sam.tate@acme-mail.io")
		mb := f.Mailbox("sam.tate@acme-mail.io", id)
		By("Smartlead suspends the account, and a gateway answers 504 every time")
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusGatewayTimeout, Applied: true, Method: http.MethodPut,
			PathPrefix: "/email-accounts/suspend/"})
		f.crossThreshold("sam.tate@acme-mail.io")
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(20 * time.Second).Should(And(
			HaveField("Reason", "SmartleadError"), HaveField("Message", ContainSubstring("HTTP 504"))))
		Expect(f.Account(id).Suspended).To(BeTrue())
		Expect(mb.Status.Smartlead.Suspended).To(BeFalse(), "no answer came")

		By("a person resumes it while the answers are still lost")
		resumeByHand(mb, "false alarm")
		Eventually(func() bool { return f.Account(id).Suspended }).WithTimeout(20*time.Second).Should(BeFalse(),
			"the suspend whose answer was lost is never undone")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb)).To(Succeed())
			g.Expect(mb.Status.Smartlead).To(And(HaveField("Suspended", false), HaveField("SuspendRequested", false),
				HaveField("Action", bgv1.PauseAction(""))))
			g.Expect(mb.Finalizers).To(BeEmpty())
		}).Should(Succeed())
		Expect(tenant.Condition(mb, bgv1.ConditionPaused)(Default)).To(HaveField("Reason", "Sending"))
	})

	It("time-to-pause measures from the threshold crossing, not from the sends still arriving", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown)
		id := f.SL.AddAccount("tess.ng@acme-mail.io")
		mb := f.Mailbox("tess.ng@acme-mail.io", id)
		f.Sends("tess.ng@acme-mail.io", 100)
		count, sum := histogram("bounceguard_time_to_pause_seconds")
		// The first run of the pause fails (5 attempts), so the pause lands on a later run that reads the
		// mailbox again: with the sends that arrived meanwhile.
		f.SL.Inject(standin.Fault{Count: 5, Code: http.StatusServiceUnavailable, Method: http.MethodPut})
		f.Bounces("tess.ng@acme-mail.io", tenant.HardBounceTexts...)
		By("sends still arrive until the pause lands")
		for c := tenant.Condition(mb, bgv1.ConditionPaused); c(Default).Status != metav1.ConditionTrue; {
			f.Sends("tess.ng@acme-mail.io", 1)
			time.Sleep(20 * time.Millisecond)
		}
		calls := f.SL.Calls()
		Expect(calls).To(HaveLen(6))
		Expect(calls[5].Code).To(Equal(http.StatusOK))
		count2, sum2 := histogram("bounceguard_time_to_pause_seconds")
		Expect(count2 - count).To(Equal(uint64(1)))
		// The crossing came before the first call; the pause landed after the last.
		Expect(sum2 - sum).To(BeNumerically(">=", calls[5].At.Sub(calls[0].At).Seconds()))
	})

	It("a notification target whose Secret has a long name does not freeze the policy's status", func() {
		long := "alerts-" + strings.Repeat("x", 240) // 247 characters: a valid Secret name
		f := newFixture(bgv1.ModeObserve, func(s *bgv1.ProtectionPolicySpec) {
			s.Notifications = []bgv1.NotificationTarget{{Type: bgv1.NotificationWebhook,
				URLSecretRef: bgv1.SecretKeySelector{Name: long, Key: "url"}}}
		})
		mb := f.Mailbox("uli.west@acme-mail.io", 0)
		tenant.Record(mb, 60, 3) // Warning: announced, and the delivery fails (no such Secret)
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), f.Policy)).To(Succeed())
			g.Expect(f.Policy.Status.Notifications).To(ConsistOf(And(HaveField("Failed", int64(1)),
				HaveField("LastError", HavePrefix(`reading the URL Secret "alerts-xxx`)))))
			g.Expect(len([]rune(f.Policy.Status.Notifications[0].LastError))).To(BeNumerically("<=", 256))
			g.Expect(f.Policy.Status.Warning).To(Equal(int32(1)))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})
})
