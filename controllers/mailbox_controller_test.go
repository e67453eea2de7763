package controllers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// fixture is one test's namespace, policy and stand-in Smartlead.
type fixture struct {
	ns     string
	key    string
	sl     *standin.Server
	policy *bgv1.ProtectionPolicy
	// org and secret authenticate the fixture's webhooks (organization id = namespace name).
	org, secret string
}

// newFixture creates a namespace with an API key Secret, a stand-in Smartlead that accepts only that key,
// and a policy named "default" with second-scale cooldowns (2s, then 4s, capped at 8s) and 5 clean sends.
func newFixture(mode bgv1.Mode, tweak ...func(*bgv1.ProtectionPolicySpec)) *fixture {
	return newFixtureIn(nil, mode, tweak...)
}

// newFixtureIn is newFixture in a namespace with the given labels.
func newFixtureIn(labels map[string]string, mode bgv1.Mode, tweak ...func(*bgv1.ProtectionPolicySpec)) *fixture {
	ns := newNamespaceWith(labels)
	f := &fixture{ns: ns, key: "sk-live-" + ns + "-DO-NOT-LOG", org: "org-" + ns, secret: "whsec-" + ns + "-DO-NOT-LOG"}
	f.sl = standin.New(f.key, "/api/v1")
	srv := httptest.NewServer(f.sl)
	DeferCleanup(srv.Close)
	Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns},
		StringData: map[string]string{"apiKey": f.key, "webhookSecret": f.secret}})).To(Succeed())
	spec := bgv1.ProtectionPolicySpec{
		Mode: mode,
		Smartlead: bgv1.SmartleadSettings{BaseURL: srv.URL + "/api/v1", OrganizationID: f.org,
			APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"},
			// The stand-in's pace: tests count calls, not wait for Smartlead's Standard plan of 60 a minute.
			RateLimit: bgv1.SmartleadRateLimit{RequestsPerMinute: 300, Burst: 10}},
		Recovery: bgv1.RecoveryRules{Cooldown: metav1.Duration{Duration: 2 * time.Second},
			MaxCooldown: metav1.Duration{Duration: 8 * time.Second}, CleanSends: 5},
	}
	// The account sync is off unless a test turns it on (accountsync_test.go): the other tests count
	// the stand-in's calls and the namespace's Mailboxes exactly.
	spec.Smartlead.Sync.Interval = &metav1.Duration{}
	for _, t := range tweak {
		t(&spec)
	}
	f.policy = &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}, Spec: spec}
	Expect(k8s.Create(ctx, f.policy)).To(Succeed())
	// When the test ends its stand-in goes away: delete the namespace's policies first (cleanups run last
	// in, first out), so that its mailboxes stop calling a Smartlead that is no longer there and do not
	// hold up the workers of the tests that follow.
	DeferCleanup(func() {
		Expect(k8s.DeleteAllOf(ctx, &bgv1.ProtectionPolicy{}, client.InNamespace(ns))).To(Succeed())
	})
	return f
}

// mailbox creates a Mailbox (with an account id in its spec when id != 0) and waits until it is Ready.
func (f *fixture) mailbox(email string, id int64) *bgv1.Mailbox {
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: strings.NewReplacer("@", "-", ".", "-").Replace(email), Namespace: f.ns},
		Spec: bgv1.MailboxSpec{Email: email}}
	if id != 0 {
		mb.Spec.SmartleadAccountID = ptr.To(id)
	}
	Expect(k8s.Create(ctx, mb)).To(Succeed())
	Eventually(condition(mb, bgv1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
	return mb
}

// setMode changes the policy's mode.
func (f *fixture) setMode(mode bgv1.Mode) {
	Expect(retry.RetryOnConflict(conflictRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(f.policy), f.policy); err != nil {
			return err
		}
		f.policy.Spec.Mode = mode
		return k8s.Update(ctx, f.policy)
	})).To(Succeed())
}

func account(f *fixture, id int64) standin.Account {
	a, ok := f.sl.Account(id)
	Expect(ok).To(BeTrue(), "account %d", id)
	return a
}

func campaign(f *fixture, id int64) standin.Campaign {
	c, ok := f.sl.Campaign(id)
	Expect(ok).To(BeTrue(), "campaign %d", id)
	return c
}

// patchCount reads bounceguard_reconciler_status_patches_total for a kind.
func patchCount(kind string) float64 {
	return testenv.Counter("bounceguard_reconciler_status_patches_total", "kind", kind)
}

// conflictRetry is patient: the controllers write the same objects as the tests, often at once.
var conflictRetry = wait.Backoff{Steps: 100, Duration: 5 * time.Millisecond, Factor: 1.2, Jitter: 0.2, Cap: 200 * time.Millisecond}

var eventSeq atomic.Int64

// record writes sends and then bounces into a mailbox's status the way the receiver does (the same tally).
func record(mb *bgv1.Mailbox, sends, bounces int) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(conflictRetry, func() error {
		cur := &bgv1.Mailbox{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), cur); err != nil {
			return err
		}
		now := time.Now()
		for i := 0; i < sends+bounces; i++ {
			ev := tally.Event{ID: fmt.Sprintf("ev-%d", eventSeq.Add(1)), Kind: tally.Send, At: now}
			if i >= sends {
				ev.Kind = tally.Bounce
			}
			tally.Apply(&cur.Status, ev, false)
		}
		tally.Refresh(&cur.Status, 100)
		return k8s.Status().Update(ctx, cur)
	})).To(Succeed())
}

func health(mb *bgv1.Mailbox) func(Gomega) bgv1.Health {
	return func(g Gomega) bgv1.Health {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb)).To(Succeed())
		return mb.Status.Health
	}
}

func condition(obj client.Object, typ string) func(Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
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
		g.Expect(c).NotTo(BeNil(), "condition %s", typ)
		return *c
	}
}

// eventsFor returns "Type Reason: Note" of the Events about an object, oldest first.
func eventsFor(obj client.Object) func(Gomega) []string {
	return func(g Gomega) []string {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(obj.GetNamespace()))).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Regarding.Kind == obj.GetObjectKind().GroupVersionKind().Kind {
				out = append(out, e.Type+" "+e.Reason+": "+e.Note)
			}
		}
		return out
	}
}

func kindOf(obj client.Object, kind string) client.Object {
	obj.GetObjectKind().SetGroupVersionKind(bgv1.GroupVersion.WithKind(kind))
	return obj
}

// driveToPaused takes a fresh mailbox through Warning to Paused and checks the evidence on the way.
func driveToPaused(mb *bgv1.Mailbox) {
	GinkgoHelper()
	record(mb, 60, 3)
	Eventually(health(mb)).Should(Equal(bgv1.HealthWarning))
	Eventually(condition(mb, bgv1.ConditionWarning)).Should(And(HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", "WarningThreshold"), HaveField("Message", "3 bounces in the last 60 sends (warning at 3/60)")))
	record(mb, 0, 2)
	Eventually(health(mb)).Should(Equal(bgv1.HealthPaused))
	Expect(mb.Status.HealthReason).To(Equal("BounceThreshold"))
	Expect(mb.Status.Evidence()).To(Equal("5 bounces in the last 60 sends (pause at 5/100)"))
	Expect(mb.Status.PauseCount).To(Equal(int32(1)))
	Expect(mb.Status.ResumeAt.Sub(mb.Status.PausedAt.Time)).To(Equal(2 * time.Second))
}

// driveToHealthy waits out the cooldown, checks the fresh window, and sends cleanSends clean sends.
func driveToHealthy(mb *bgv1.Mailbox) {
	GinkgoHelper()
	Eventually(health(mb)).WithTimeout(10 * time.Second).Should(Equal(bgv1.HealthRecovering))
	Expect(mb.Status.HealthReason).To(Equal("CooldownElapsed"))
	Expect(mb.Status.WindowBounces).To(BeZero(), "Recovering starts a fresh window")
	Expect(mb.Status.Bounced).To(Equal(int64(5)), "lifetime counters stay")
	record(mb, 4, 0)
	Consistently(health(mb)).WithTimeout(300 * time.Millisecond).Should(Equal(bgv1.HealthRecovering))
	record(mb, 1, 0)
	Eventually(health(mb)).Should(Equal(bgv1.HealthHealthy))
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
	evs := eventsFor(kindOf(mb, "Mailbox"))(Default)
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
		mb := f.mailbox("alice@acme.com", 0)
		f.sl.AddAccount("alice@acme.com")
		driveToPaused(mb)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "NotEnforced"), HaveField("Message", ContainSubstring("mode is Observe"))))
		Expect(meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPauseRecommended)).To(BeNil())
		driveToHealthy(mb)
		Eventually(func() []string { return transitionEvents(mb, "Normal") }).Should(Equal(transitions))
		Expect(f.sl.Calls()).To(BeEmpty())
	})

	It("Suggest: recommends the pause with Warning Events and never calls Smartlead", func() {
		f := newFixture(bgv1.ModeSuggest)
		mb := f.mailbox("bob@acme.com", 0)
		f.sl.AddAccount("bob@acme.com")
		driveToPaused(mb)
		Eventually(condition(mb, bgv1.ConditionPauseRecommended)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "BounceThreshold"),
			HaveField("Message", HavePrefix("5 bounces in the last 60 sends (pause at 5/100); cooldown until "))))
		Expect(condition(mb, bgv1.ConditionPaused)(Default)).To(HaveField("Reason", "NotEnforced"))
		driveToHealthy(mb)
		Expect(condition(mb, bgv1.ConditionPauseRecommended)(Default)).To(HaveField("Status", metav1.ConditionFalse))
		// Getting worse is a Warning Event in Suggest; getting better is Normal.
		Eventually(func() []string { return transitionEvents(mb, "Warning", "Warning", "Normal", "Normal") }).Should(Equal(transitions))
		Expect(f.sl.Calls()).To(BeEmpty())
	})

	It("Enforce: suspends at the pause threshold and unsuspends on Recovering", func() {
		f := newFixture(bgv1.ModeEnforce)
		mb := f.mailbox("carol@acme.com", 0)
		id := f.sl.AddAccount("carol@acme.com")
		driveToPaused(mb)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "BounceThreshold"),
			HaveField("Message", HavePrefix("5 bounces in the last 60 sends (pause at 5/100); cooldown until "))))
		Expect(mb.Status.Smartlead).To(And(HaveField("AccountID", id), HaveField("Paused", true),
			HaveField("Suspended", true), HaveField("Action", bgv1.PauseActionSuspend)))
		Expect(account(f, id)).To(HaveField("Suspended", true))
		driveToHealthy(mb)
		Expect(account(f, id)).To(HaveField("Suspended", false))
		Expect(condition(mb, bgv1.ConditionPaused)(Default)).To(HaveField("Reason", "Sending"))
		Expect(mb.Status.Smartlead).To(And(HaveField("Paused", false), HaveField("AccountID", id)))
		Expect(f.sl.CallStrings()).To(Equal([]string{
			"GET /email-accounts/?limit=100&offset=0",
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
		Eventually(func() []string { return transitionEvents(mb, "Warning", "Warning", "Normal", "Normal") }).Should(Equal(transitions))
		Eventually(eventsFor(mb)).Should(ContainElements(
			HavePrefix(fmt.Sprintf("Warning PausedInSmartlead: paused in Smartlead (Suspend, account %d): 5 bounces", id)),
			HavePrefix(fmt.Sprintf("Normal ResumedInSmartlead: resumed in Smartlead (account %d)", id))))
	})

	It("Enforce with RemoveFromCampaigns: restores exactly the campaigns it removed, and suspends where Smartlead refuses", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
		})
		id := f.sl.AddAccount("dave@acme.com")
		other := f.sl.AddAccount("erin@acme.com")
		shared := f.sl.AddCampaign("ACTIVE", other, id)
		draft := f.sl.AddCampaign("DRAFTED", id)
		lonely := f.sl.AddCampaign("ACTIVE", id)
		unrelated := f.sl.AddCampaign("ACTIVE", other)
		mb := f.mailbox("dave@acme.com", id)
		driveToPaused(mb)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{shared, draft}))
		Expect(mb.Status.Smartlead.RefusedCampaignIDs).To(Equal([]int64{lonely}))
		Expect(mb.Status.Smartlead.Suspended).To(BeTrue(), "refused by an ACTIVE campaign: suspended instead")
		Expect(campaign(f, shared)).To(HaveField("AccountIDs", []int64{other}))

		driveToHealthy(mb)
		body := fmt.Sprintf(`{"email_account_ids":[%d]}`, id)
		Expect(f.sl.CallStrings()).To(Equal([]string{
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
		Expect(campaign(f, shared)).To(HaveField("AccountIDs", []int64{other, id}))
		Expect(campaign(f, draft)).To(HaveField("AccountIDs", []int64{id}))
		Expect(campaign(f, lonely)).To(HaveField("AccountIDs", []int64{id}))
		Expect(campaign(f, unrelated)).To(HaveField("AccountIDs", []int64{other}))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(BeEmpty())
	})

	It("after a crash mid-pause, carries on from the recorded campaigns: no call repeated that matters, none forgotten", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns
			s.Recovery.Automatic = ptr.To(false)
		})
		id := f.sl.AddAccount("lena@acme.com")
		other := f.sl.AddAccount("mo@acme.com")
		first := f.sl.AddCampaign("ACTIVE", other)      // the crashed run already removed lena from it
		second := f.sl.AddCampaign("ACTIVE", other, id) // ... but not yet from this one
		mb := f.mailbox("lena@acme.com", id)

		By("the status a manager left behind when it stopped between two removals")
		Expect(retry.RetryOnConflict(conflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			play := func(n int, kind tally.Kind) {
				for i := 0; i < n; i++ {
					tally.Apply(&mb.Status, tally.Event{ID: fmt.Sprintf("crash-%d", eventSeq.Add(1)), Kind: kind}, false)
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

		Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(Equal([]int64{first, second}))
		Expect(campaign(f, second).AccountIDs).To(Equal([]int64{other}))

		By("resuming restores both, including the one whose removal the new run never saw")
		Expect(retry.RetryOnConflict(conflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "1"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(func() []int64 { return campaign(f, first).AccountIDs }).Should(Equal([]int64{other, id}))
		Eventually(func() []int64 { return campaign(f, second).AccountIDs }).Should(Equal([]int64{other, id}))
		body := fmt.Sprintf(`{"email_account_ids":[%d]}`, id)
		Expect(f.sl.CallStrings()).To(Equal([]string{
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
		id := f.sl.AddAccount("frank@acme.com")
		mb := f.mailbox("frank@acme.com", id)
		record(mb, 100, 5)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", HaveSuffix("recovery.automatic is false: set annotation bounceguard.io/resume to resume"))))
		Expect(mb.Status.ResumeAt).To(BeNil())

		f.setMode(bgv1.ModeObserve)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Reason", "NotEnforced"))
		Expect(mb.Status.Health).To(Equal(bgv1.HealthPaused), "the state machine is the same in every mode")
		Expect(account(f, id)).To(HaveField("Suspended", false))

		f.setMode(bgv1.ModeEnforce)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(account(f, id)).To(HaveField("Suspended", true))

		By("a person resuming it with the annotation")
		Expect(retry.RetryOnConflict(conflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); err != nil {
				return err
			}
			mb.Annotations = map[string]string{bgv1.AnnotationResume: "checked the list, 2026-11-25"}
			return k8s.Update(ctx, mb)
		})).To(Succeed())
		Eventually(health(mb)).Should(Equal(bgv1.HealthRecovering))
		Expect(mb.Status.HealthReason).To(Equal("ManualResume"))
		Eventually(func() bool { a, _ := f.sl.Account(id); return a.Suspended }).Should(BeFalse())
		Expect(f.sl.CallStrings()).To(Equal([]string{
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
	})

	It("does not write status for events that change no decision (no write storm)", func() {
		f := newFixture(bgv1.ModeSuggest)
		mb := f.mailbox("kate@acme.com", 0)
		record(mb, 10, 1)
		Eventually(func() string { _ = k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); return mb.Status.Window }).Should(Equal("1/100"))
		time.Sleep(300 * time.Millisecond) // let the controllers settle on the new mailbox and domain
		writes := patchCount("Mailbox")
		for i := 0; i < 20; i++ {
			record(mb, 1, 0)
		}
		Consistently(func() float64 { return patchCount("Mailbox") - writes }).WithTimeout(time.Second).Should(BeZero())
		record(mb, 0, 2) // 3 bounces in the last 60 sends: a decision changes, one write
		Eventually(health(mb)).Should(Equal(bgv1.HealthWarning))
		Consistently(func() float64 { return patchCount("Mailbox") - writes }).WithTimeout(time.Second).Should(BeNumerically("<=", 2))
	})

	It("deleting a mailbox that Enforce paused resumes it in Smartlead first", func() {
		f := newFixture(bgv1.ModeEnforce)
		id := f.sl.AddAccount("jack@acme.com")
		mb := f.mailbox("jack@acme.com", id)
		Expect(mb.Finalizers).To(BeEmpty(), "no finalizer while nothing is paused")
		record(mb, 100, 5)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Finalizers).To(ContainElement("bounceguard.io/smartlead-pause"))
		Expect(k8s.Delete(ctx, mb)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb)) }).Should(BeTrue())
		Expect(account(f, id).Suspended).To(BeFalse())
		Expect(f.sl.CallStrings()).To(Equal([]string{
			fmt.Sprintf("PUT /email-accounts/suspend/%d", id),
			fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id),
		}))
	})

	It("Enforce without a usable API key says so on the mailbox instead of failing silently", func() {
		f := newFixture(bgv1.ModeEnforce)
		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: f.ns}})).To(Succeed())
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "gina", Namespace: f.ns}, Spec: bgv1.MailboxSpec{Email: "gina@acme.com"}}
		Expect(k8s.Create(ctx, mb)).To(Succeed())
		record(mb, 100, 5)
		Eventually(condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Reason", "SmartleadUnavailable"),
			HaveField("Message", `cannot pause in Smartlead: no Smartlead API key: Secret "smartlead" not found`)))
		Expect(condition(mb, bgv1.ConditionReady)(Default)).To(HaveField("Reason", "SmartleadUnavailable"))
		Eventually(condition(f.policy, bgv1.ConditionReady)).Should(HaveField("Reason", "SecretNotFound"))
	})

	It("retries 429 after Retry-After and 5xx with backoff, ends paused, and never logs the key", func() {
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Minute, time.Minute
		})
		id := f.sl.AddAccount("hank@acme.com")
		mb := f.mailbox("hank@acme.com", id)
		f.sl.Inject(standin.Fault{Count: 2, Code: http.StatusTooManyRequests, RetryAfter: "1"})
		f.sl.Inject(standin.Fault{Count: 1, Code: http.StatusServiceUnavailable})
		record(mb, 100, 5)
		Eventually(condition(mb, bgv1.ConditionPaused)).WithTimeout(15 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		calls := f.sl.Calls()
		Expect(calls).To(HaveLen(4))
		Expect([]int{calls[0].Code, calls[1].Code, calls[2].Code, calls[3].Code}).To(Equal([]int{429, 429, 503, 200}))
		Expect(calls[1].At.Sub(calls[0].At)).To(BeNumerically(">=", 900*time.Millisecond), "Retry-After: 1 honoured")
		Expect(calls[2].At.Sub(calls[1].At)).To(BeNumerically(">=", 900*time.Millisecond), "Retry-After: 1 honoured")
		Expect(account(f, id)).To(HaveField("Suspended", true))

		By("a Smartlead outage: the failure is reported, then the pause lands once Smartlead is back")
		other := f.sl.AddAccount("ivy@acme.com")
		mb2 := f.mailbox("ivy@acme.com", other)
		f.sl.Inject(standin.Fault{Count: -1, Code: http.StatusInternalServerError})
		record(mb2, 100, 5)
		Eventually(condition(mb2, bgv1.ConditionPaused)).WithTimeout(15 * time.Second).Should(And(
			HaveField("Reason", "SmartleadError"), HaveField("Message", ContainSubstring("HTTP 500 after 5 attempt(s)"))))
		Eventually(eventsFor(kindOf(mb2, "Mailbox"))).Should(ContainElement(HavePrefix("Warning SmartleadCallFailed: smartlead Suspend: HTTP 500")))
		f.sl.ClearFaults()
		Eventually(condition(mb2, bgv1.ConditionPaused)).WithTimeout(20 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb2.Status.Smartlead.LastError).To(BeEmpty())

		for _, where := range []string{logs.String(), fmt.Sprint(eventsFor(kindOf(mb2, "Mailbox"))(Default)), fmt.Sprintf("%+v", mb2.Status)} {
			Expect(where).NotTo(ContainSubstring(f.key))
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
			mb := f.mailbox(email, f.sl.AddAccount(email))
			record(mb, 100, 5)
			mbs = append(mbs, mb)
		}
		for _, mb := range mbs {
			Eventually(health(mb)).Should(Equal(bgv1.HealthPaused))
		}
		Expect(f.sl.Calls()).To(BeEmpty())

		f.setMode(bgv1.ModeEnforce) // 20 mailboxes to pause at once
		Eventually(func() int { return len(f.sl.Calls()) }).WithTimeout(20 * time.Second).Should(Equal(n))
		calls := f.sl.Calls()
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
			Eventually(condition(mb, bgv1.ConditionPaused)).Should(HaveField("Status", metav1.ConditionTrue))
		}
	})
})
