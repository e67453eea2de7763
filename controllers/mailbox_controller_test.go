package controllers_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// patchCount reads bounceguard_reconciler_status_patches_total for a kind.
func patchCount(kind string) float64 {
	return testenv.Counter("bounceguard_reconciler_status_patches_total", "kind", kind)
}

// driveToPaused takes a fresh mailbox through Warning to Paused and checks the evidence on the way.
func driveToPaused(mb *bgv1.Mailbox) {
	GinkgoHelper()
	tenant.Record(mb, 60, 3)
	Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthWarning))
	Eventually(tenant.Condition(mb, bgv1.ConditionWarning)).Should(And(HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", "WarningThreshold"), HaveField("Message", "3 bounces in the last 60 sends (warning at 3/60)")))
	tenant.Record(mb, 0, 2)
	Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused))
	Expect(mb.Status.HealthReason).To(Equal("BounceThreshold"))
	Expect(mb.Status.Evidence()).To(Equal("5 bounces in the last 60 sends (pause at 5/100)"))
	Expect(mb.Status.PauseCount).To(Equal(int32(1)))
	Expect(mb.Status.ResumeAt.Sub(mb.Status.PausedAt.Time)).To(Equal(2 * time.Second))
}

// driveToHealthy waits out the cooldown, checks the fresh window, and sends cleanSends clean sends.
func driveToHealthy(mb *bgv1.Mailbox) {
	GinkgoHelper()
	Eventually(tenant.Health(mb)).WithTimeout(10 * time.Second).Should(Equal(bgv1.HealthRecovering))
	Expect(mb.Status.HealthReason).To(Equal("CooldownElapsed"))
	Expect(mb.Status.WindowBounces).To(BeZero(), "Recovering starts a fresh window")
	Expect(mb.Status.Bounced).To(Equal(int64(5)), "lifetime counters stay")
	tenant.Record(mb, 4, 0)
	Consistently(tenant.Health(mb)).WithTimeout(300 * time.Millisecond).Should(Equal(bgv1.HealthRecovering))
	tenant.Record(mb, 1, 0)
	Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthHealthy))
	Expect(mb.Status.HealthReason).To(Equal("CleanSends"))
	Expect(mb.Status.PauseCount).To(Equal(int32(1)), "the ladder resets only after a whole clean pause window")
}

var transitions = []string{
	"WarningThreshold: Healthy -> Warning: 3 bounces in the last 60 sends (warning at 3/60)",
	"BounceThreshold: Warning -> Paused: 5 bounces in the last 60 sends (pause at 5/100)",
	"CooldownElapsed: Paused -> Recovering: cooldown of 2s (pause 1) elapsed",
	"CleanSends: Recovering -> Healthy: 5 sends without a counted bounce since the pause ended (5 needed)",
}

// transitionEvents returns the transition Events as "Reason: Note" with the given type prefix checked.
func transitionEvents(mb *bgv1.Mailbox, types ...string) []string {
	GinkgoHelper()
	var out []string
	evs := tenant.EventsFor(tenant.KindOf(mb, "Mailbox"))(Default)
	i := 0
	for _, e := range evs {
		for _, t := range transitions {
			reason := strings.SplitN(t, ":", 2)[0]
			if strings.HasPrefix(e, "Normal "+reason+":") || strings.HasPrefix(e, "Warning "+reason+":") {
				Expect(e).To(HavePrefix(types[min(i, len(types)-1)]+" "), "event %q", e)
				out = append(out, strings.SplitN(e, " ", 2)[1])
				i++
			}
		}
	}
	return out
}

var _ = Describe("Mailbox protection", func() {
	It("Observe: records the whole cycle with Normal Events and never calls Smartlead", func() {
		f := newFixture(bgv1.ModeObserve)
		mb := f.Mailbox("alice@acme.com", 0)
		f.SL.AddAccount("alice@acme.com")
		driveToPaused(mb)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "NotEnforced"), HaveField("Message", ContainSubstring("mode is Observe"))))
		Expect(meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPauseRecommended)).To(BeNil())
		driveToHealthy(mb)
		Eventually(func() []string { return transitionEvents(mb, "Normal") }).Should(Equal(transitions))
		Expect(f.SL.Calls()).To(BeEmpty())
	})

	It("Suggest: recommends the pause with Warning Events and never calls Smartlead", func() {
		f := newFixture(bgv1.ModeSuggest)
		mb := f.Mailbox("bob@acme.com", 0)
		f.SL.AddAccount("bob@acme.com")
		driveToPaused(mb)
		Eventually(tenant.Condition(mb, bgv1.ConditionPauseRecommended)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "BounceThreshold"),
			HaveField("Message", HavePrefix("5 bounces in the last 60 sends (pause at 5/100); cooldown until "))))
		Expect(tenant.Condition(mb, bgv1.ConditionPaused)(Default)).To(HaveField("Reason", "NotEnforced"))
		driveToHealthy(mb)
		Expect(tenant.Condition(mb, bgv1.ConditionPauseRecommended)(Default)).To(HaveField("Status", metav1.ConditionFalse))
		// Getting worse is a Warning Event in Suggest; getting better is Normal.
		Eventually(func() []string { return transitionEvents(mb, "Warning", "Warning", "Normal", "Normal") }).Should(Equal(transitions))
		Expect(f.SL.Calls()).To(BeEmpty())
	})

	It("Enforce: suspends at the pause threshold and unsuspends on Recovering", func() {
		f := newFixture(bgv1.ModeEnforce)
		mb := f.Mailbox("carol@acme.com", 0)
		id := f.SL.AddAccount("carol@acme.com")
		driveToPaused(mb)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "BounceThreshold"),
			HaveField("Message", HavePrefix("5 bounces in the last 60 sends (pause at 5/100); cooldown until "))))
		Expect(mb.Status.Smartlead).To(And(HaveField("AccountID", id), HaveField("Paused", true),
			HaveField("Suspended", true), HaveField("Action", bgv1.PauseActionSuspend)))
		Expect(f.Account(id)).To(HaveField("Suspended", true))
		driveToHealthy(mb)
		Expect(f.Account(id)).To(HaveField("Suspended", false))
		Expect(tenant.Condition(mb, bgv1.ConditionPaused)(Default)).To(HaveField("Reason", "Sending"))
		Expect(mb.Status.Smartlead).To(And(HaveField("Paused", false), HaveField("AccountID", id)))
		Expect(f.SL.CallStrings()).To(Equal([]string{
			"GET /email-accounts/?limit=100&offset=0",
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
		Eventually(func() []string { return transitionEvents(mb, "Warning", "Warning", "Normal", "Normal") }).Should(Equal(transitions))
		Eventually(tenant.EventsFor(mb)).Should(ContainElements(
			HavePrefix(fmt.Sprintf("Warning PausedInSmartlead: paused in Smartlead (Suspend, account %d): 5 bounces", id)),
			HavePrefix(fmt.Sprintf("Normal ResumedInSmartlead: resumed in Smartlead (account %d)", id))))
	})

	It("Enforce with RemoveFromCampaigns: restores exactly the campaigns it removed, and suspends where Smartlead refuses", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
		})
		id := f.SL.AddAccount("dave@acme.com")
		other := f.SL.AddAccount("erin@acme.com")
		shared := f.SL.AddCampaign("ACTIVE", other, id)
		draft := f.SL.AddCampaign("DRAFTED", id)
		lonely := f.SL.AddCampaign("ACTIVE", id)
		unrelated := f.SL.AddCampaign("ACTIVE", other)
		mb := f.Mailbox("dave@acme.com", id)
		driveToPaused(mb)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{shared, draft}))
		Expect(mb.Status.Smartlead.RefusedCampaignIDs).To(Equal([]int64{lonely}))
		Expect(mb.Status.Smartlead.Suspended).To(BeTrue(), "refused by an ACTIVE campaign: suspended instead")
		Expect(f.Campaign(shared)).To(HaveField("AccountIDs", []int64{other}))

		driveToHealthy(mb)
		body := fmt.Sprintf(`{"email_account_ids":[%d]}`, id)
		Expect(f.SL.CallStrings()).To(Equal([]string{
			fmt.Sprintf("GET /email-accounts/%d?fetch_campaigns=true", id),
			fmt.Sprintf("DELETE /campaigns/%d/email-accounts %s", shared, body),
			fmt.Sprintf("DELETE /campaigns/%d/email-accounts %s", draft, body),
			fmt.Sprintf("DELETE /campaigns/%d/email-accounts %s", lonely, body),
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			// Smartlead adds only accounts that are not suspended: unsuspended first, then restored.
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
			fmt.Sprintf("POST /campaigns/%d/email-accounts %s", shared, body),
			fmt.Sprintf("POST /campaigns/%d/email-accounts %s", draft, body),
		}))
		Expect(f.Campaign(shared)).To(HaveField("AccountIDs", []int64{other, id}))
		Expect(f.Campaign(draft)).To(HaveField("AccountIDs", []int64{id}))
		Expect(f.Campaign(lonely)).To(HaveField("AccountIDs", []int64{id}))
		Expect(f.Campaign(unrelated)).To(HaveField("AccountIDs", []int64{other}))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(BeEmpty())
	})

	It("after a crash mid-pause, carries on from the recorded campaigns: no call repeated that matters, none forgotten", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("lena@acme.com")
		other := f.SL.AddAccount("mo@acme.com")
		first := f.SL.AddCampaign("ACTIVE", other)      // the crashed run already removed lena from it
		second := f.SL.AddCampaign("ACTIVE", other, id) // ... but not yet from this one
		mb := f.Mailbox("lena@acme.com", id)

		By("the status a manager left behind when it stopped between two removals")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			play := func(n int, kind tally.Kind) {
				for i := 0; i < n; i++ {
					tally.Apply(&mb.Status, tally.Event{ID: fmt.Sprintf("crash-%d", tenant.EventSeq.Add(1)), Kind: kind}, false)
				}
			}
			play(100, tally.Send)
			play(5, tally.Bounce)
			tally.Refresh(&mb.Status, 100)
			mb.Status.Health, mb.Status.PauseCount = bgv1.HealthPaused, 1
			mb.Status.PausedAt = &metav1.Time{Time: time.Now()}
			mb.Status.HealthReason, mb.Status.HealthMessage = "BounceThreshold", "5 bounces in the last 100 sends (pause at 5/100)"
			mb.Status.Smartlead = bgv1.SmartleadState{AccountID: id, Action: bgv1.PauseActionRemoveFromCampaigns,
				RemovedCampaignIDs: []int64{first, second}, LastOperation: "RemoveFromCampaigns " + fmt.Sprint(first)}
			return k8s.Status().Update(ctx, mb)
		})).To(Succeed())

		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{first, second}))
		Expect(f.Campaign(second).AccountIDs).To(Equal([]int64{other}))

		By("resuming restores both, including the one whose removal the new run never saw")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "1"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() []int64 { return f.Campaign(first).AccountIDs }).Should(Equal([]int64{other, id}))
		Eventually(func() []int64 { return f.Campaign(second).AccountIDs }).Should(Equal([]int64{other, id}))
		body := fmt.Sprintf(`{"email_account_ids":[%d]}`, id)
		Expect(f.SL.CallStrings()).To(Equal([]string{
			// no GET of the account's campaigns: they were recorded before the first removal
			fmt.Sprintf("DELETE /campaigns/%d/email-accounts %s", first, body),
			fmt.Sprintf("DELETE /campaigns/%d/email-accounts %s", second, body),
			fmt.Sprintf("POST /campaigns/%d/email-accounts %s", first, body),
			fmt.Sprintf("POST /campaigns/%d/email-accounts %s", second, body),
		}))
	})

	It("lowering Enforce to Observe resumes in Smartlead what Enforce paused; raising it pauses again", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.SL.AddAccount("frank@acme.com")
		mb := f.Mailbox("frank@acme.com", id)
		tenant.Record(mb, 100, 5)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", HaveSuffix("recovery.automatic is false: set annotation bounceguard.io/resume to resume"))))
		Expect(mb.Status.ResumeAt).To(BeNil())

		f.SetMode(bgv1.ModeObserve)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Reason", "NotEnforced"))
		Expect(mb.Status.Health).To(Equal(bgv1.HealthPaused), "the state machine is the same in every mode")
		Expect(f.Account(id)).To(HaveField("Suspended", false))

		f.SetMode(bgv1.ModeEnforce)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(f.Account(id)).To(HaveField("Suspended", true))

		By("a person resuming it with the annotation")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "checked the list, 2026-11-25"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthRecovering))
		Expect(mb.Status.HealthReason).To(Equal("ManualResume"))
		Eventually(func() bool { a, _ := f.SL.Account(id); return a.Suspended }).Should(BeFalse())
		Expect(f.SL.CallStrings()).To(Equal([]string{
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
	})

	It("does not write status for events that change no decision (no write storm)", func() {
		f := newFixture(bgv1.ModeSuggest)
		mb := f.Mailbox("kate@acme.com", 0)
		tenant.Record(mb, 10, 1)
		Eventually(func() string { _ = k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); return mb.Status.Window }).Should(Equal("1/100"))
		time.Sleep(300 * time.Millisecond) // let the controllers settle on the new mailbox and domain
		writes := patchCount("Mailbox")
		for i := 0; i < 20; i++ {
			tenant.Record(mb, 1, 0)
		}
		Consistently(func() float64 { return patchCount("Mailbox") - writes }).WithTimeout(time.Second).Should(BeZero())
		tenant.Record(mb, 0, 2) // 3 bounces in the last 60 sends: a decision changes, one write
		Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthWarning))
		Consistently(func() float64 { return patchCount("Mailbox") - writes }).WithTimeout(time.Second).Should(BeNumerically("<=", 2))
	})

	It("deleting a mailbox that Enforce paused resumes it in Smartlead first", func() {
		f := newFixture(bgv1.ModeEnforce)
		id := f.SL.AddAccount("jack@acme.com")
		mb := f.Mailbox("jack@acme.com", id)
		Expect(mb.Finalizers).To(BeEmpty(), "no finalizer while nothing is paused")
		tenant.Record(mb, 100, 5)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Finalizers).To(ContainElement("bounceguard.io/smartlead-pause"))
		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb)) }).Should(BeTrue())
		Expect(f.Account(id).Suspended).To(BeFalse())
		Expect(f.SL.CallStrings()).To(Equal([]string{
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
	})

	It("Enforce without a usable API key says so on the mailbox instead of failing silently", func() {
		f := newFixture(bgv1.ModeEnforce)
		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: f.NS}})).To(Succeed())
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "gina", Namespace: f.NS}, Spec: bgv1.MailboxSpec{Email: "gina@acme.com"}}
		Expect(k8s.Create(ctx, mb)).To(Succeed())
		tenant.Record(mb, 100, 5)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Reason", "SmartleadUnavailable"),
			HaveField("Message", `cannot pause in Smartlead: no Smartlead API key: Secret "smartlead" not found`)))
		Expect(tenant.Condition(mb, bgv1.ConditionReady)(Default)).To(HaveField("Reason", "SmartleadUnavailable"))
		Eventually(tenant.Condition(f.Policy, bgv1.ConditionReady)).Should(HaveField("Reason", "SecretNotFound"))
	})

	It("retries 429 after Retry-After and 5xx with backoff, ends paused, and never logs the key", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Minute, time.Minute
		})
		id := f.SL.AddAccount("hank@acme.com")
		mb := f.Mailbox("hank@acme.com", id)
		f.SL.Inject(standin.Fault{Count: 2, Code: http.StatusTooManyRequests, RetryAfter: "1"})
		f.SL.Inject(standin.Fault{Count: 1, Code: http.StatusServiceUnavailable})
		tenant.Record(mb, 100, 5)
		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(15 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		calls := f.SL.Calls()
		Expect(calls).To(HaveLen(4))
		Expect([]int{calls[0].Code, calls[1].Code, calls[2].Code, calls[3].Code}).To(Equal([]int{429, 429, 503, 200}))
		Expect(calls[1].At.Sub(calls[0].At)).To(BeNumerically(">=", 900*time.Millisecond), "Retry-After: 1 honoured")
		Expect(calls[2].At.Sub(calls[1].At)).To(BeNumerically(">=", 900*time.Millisecond), "Retry-After: 1 honoured")
		Expect(f.Account(id)).To(HaveField("Suspended", true))

		By("a Smartlead outage: the failure is reported, then the pause lands once Smartlead is back")
		other := f.SL.AddAccount("ivy@acme.com")
		mb2 := f.Mailbox("ivy@acme.com", other)
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusInternalServerError})
		tenant.Record(mb2, 100, 5)
		Eventually(tenant.Condition(mb2, bgv1.ConditionPaused)).WithTimeout(15 * time.Second).Should(And(
			HaveField("Reason", "SmartleadError"), HaveField("Message", ContainSubstring("HTTP 500 after 5 attempt(s)"))))
		Eventually(tenant.EventsFor(tenant.KindOf(mb2, "Mailbox"))).Should(ContainElement(HavePrefix("Warning SmartleadCallFailed: smartlead Suspend: HTTP 500")))
		f.SL.ClearFaults()
		Eventually(tenant.Condition(mb2, bgv1.ConditionPaused)).WithTimeout(20 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb2.Status.Smartlead.LastError).To(BeEmpty())

		for _, where := range []string{logs.String(), fmt.Sprint(tenant.EventsFor(tenant.KindOf(mb2, "Mailbox"))(Default)), fmt.Sprintf("%+v", mb2.Status)} {
			Expect(where).NotTo(ContainSubstring(f.Key))
			Expect(where).NotTo(ContainSubstring("DO-NOT-LOG"))
		}
	})

	It("spaces a burst of pauses through the API key's shared budget (spec.smartlead.rateLimit: 300 a minute, burst 10, in these fixtures)", func() {
		f := newFixture(bgv1.ModeObserve, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Minute, time.Minute
			s.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
		})
		const n = 20
		var mbs []*bgv1.Mailbox
		for i := 0; i < n; i++ {
			email := fmt.Sprintf("burst%02d@acme.com", i)
			mb := f.Mailbox(email, f.SL.AddAccount(email))
			tenant.Record(mb, 100, 5)
			mbs = append(mbs, mb)
		}
		for _, mb := range mbs {
			Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused))
		}
		Expect(f.SL.Calls()).To(BeEmpty())

		f.SetMode(bgv1.ModeEnforce) // 20 mailboxes to pause at once
		Eventually(func() int { return len(f.SL.Calls()) }).WithTimeout(20 * time.Second).Should(Equal(n))
		calls := f.SL.Calls()
		// A token bucket of 300 a minute (5/s) with a burst of 10: no interval holds more calls than that allows.
		for i := range calls {
			for j := i; j < len(calls); j++ {
				allowed := 10 + 5*calls[j].At.Sub(calls[i].At).Seconds() + 1 // +1: clock granularity
				Expect(float64(j-i+1)).To(BeNumerically("<=", allowed), "calls %d..%d", i, j)
			}
		}
		Expect(calls[n-1].At.Sub(calls[0].At)).To(BeNumerically(">=", 1800*time.Millisecond),
			"the 10 calls beyond the burst need at least (20-10)/5 s")
		for _, mb := range mbs {
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		}
	})
})
