package controllers_test

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// fleet creates n mailboxes name<i>@domain, each with a stand-in account id in its spec.
func (f *fixture) fleet(domain string, n int) ([]*bgv1.Mailbox, []int64) {
	var mbs []*bgv1.Mailbox
	var ids []int64
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("box%d@%s", i, domain)
		id := f.SL.AddAccount(email)
		mbs = append(mbs, f.Mailbox(email, id))
		ids = append(ids, id)
	}
	return mbs, ids
}

func (f *fixture) suspended(ids []int64) []bool {
	out := make([]bool, len(ids))
	for i, id := range ids {
		out[i] = f.Account(id).Suspended
	}
	return out
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

var _ = Describe("Domains", func() {
	It("creates a labelled Domain for every domain its mailboxes use, and never deletes one a person created", func() {
		f := newFixture(bgv1.ModeObserve)
		mine := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "people.com", Namespace: f.NS}}
		Expect(k8s.Create(ctx, mine)).To(Succeed())
		a := f.Mailbox("a@people.com", 0)
		b := f.Mailbox("b@acme.com", 0)

		created := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: f.NS}}
		Eventually(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(created), created) }).Should(Succeed())
		Expect(created.Labels).To(HaveKeyWithValue(bgv1.LabelManagedBy, bgv1.ManagedByValue))
		Expect(created.Spec.PolicyRef.Name).To(Equal("default"))
		Eventually(func() int32 { _ = k8s.Get(ctx, client.ObjectKeyFromObject(mine), mine); return mine.Status.Mailboxes }).Should(Equal(int32(1)))
		Expect(mine.Labels).NotTo(HaveKey(bgv1.LabelManagedBy))

		Expect(k8s.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(created), created)) }).Should(BeTrue())
		Expect(k8s.Delete(ctx, a)).To(Succeed())
		Eventually(func() int32 { _ = k8s.Get(ctx, client.ObjectKeyFromObject(mine), mine); return mine.Status.Mailboxes }).Should(BeZero())
		Consistently(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(mine), mine) }).
			WithTimeout(time.Second).Should(Succeed(), "a Domain a person created stays")
	})

	It("Enforce: 30% turns Warning, 50% pauses every mailbox of the domain, and it recovers without a person", func() {
		// A 5 s cooldown leaves the six pauses time to land on a loaded machine before the domain recovers.
		f := newFixture(bgv1.ModeEnforce, func(s *bgv1.ProtectionPolicySpec) { s.Recovery.Cooldown.Duration = 5 * time.Second })
		mbs, ids := f.fleet("acme.com", 6)
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: f.NS}}
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthHealthy))
		// The domain aggregates its mailboxes as their Domain watch events arrive: wait for all six.
		Eventually(func() int32 { _ = k8s.Get(ctx, client.ObjectKeyFromObject(d), d); return d.Status.Mailboxes }).Should(Equal(int32(6)))

		tenant.Record(mbs[0], 60, 3)
		tenant.Record(mbs[1], 60, 3)
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthWarning))
		Eventually(tenant.Condition(d, bgv1.ConditionWarning)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", "2 of 6 mailboxes unhealthy (33%, warning at 30%)")))
		Expect(f.SL.Calls()).To(BeEmpty(), "a Warning domain pauses nothing")

		tenant.Record(mbs[2], 60, 3)
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthPaused))
		Expect(d.Status.HealthMessage).To(Equal("3 of 6 mailboxes unhealthy (50%, pause at 50%)"))
		Eventually(tenant.Condition(d, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", HavePrefix("3 of 6 mailboxes unhealthy (50%, pause at 50%); cooldown until "))))
		Eventually(func() []bool { return f.suspended(ids) }).Should(Equal(repeat(true, 6)), "the cascade pauses all six")
		for i, mb := range mbs {
			Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionTrue),
				HaveField("Reason", "DomainPaused"), HaveField("Message", ContainSubstring("its domain acme.com is Paused"))))
			Expect(mb.Status.Health).To(Equal([]bgv1.Health{bgv1.HealthWarning, bgv1.HealthWarning, bgv1.HealthWarning,
				bgv1.HealthHealthy, bgv1.HealthHealthy, bgv1.HealthHealthy}[i]), "a cascade pause leaves a mailbox's own health alone")
		}
		Eventually(func() int32 { _ = k8s.Get(ctx, client.ObjectKeyFromObject(d), d); return d.Status.PausedMailboxes }).Should(Equal(int32(6)))
		Expect(d.Status.UnhealthyMailboxes).To(Equal(int32(3)), "cascade-paused mailboxes do not count as unhealthy")

		By("the cooldown ends: Recovering lifts the cascade so the mailboxes can send")
		Eventually(tenant.DomainHealth(d)).WithTimeout(15 * time.Second).Should(Equal(bgv1.HealthRecovering))
		Eventually(func() []bool { return f.suspended(ids) }).Should(Equal(repeat(false, 6)))

		By("the mailboxes send cleanly again: the domain returns to Healthy on its own")
		for _, mb := range mbs[:3] {
			tenant.Record(mb, 60, 0)
		}
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthHealthy))
		Expect(d.Status.HealthReason).To(Equal("MailboxesRecovered"))
		// It turns Healthy as soon as fewer than 30% are unhealthy: at 1 of 6, or 0 if it saw the last two at once.
		Expect(d.Status.HealthMessage).To(MatchRegexp(`^[01] of 6 mailboxes unhealthy \(1?[06]%, warning at 30%\)$`))
		Eventually(tenant.EventsFor(tenant.KindOf(d, "Domain"))).Should(HaveExactElements(
			"Warning UnhealthyMailboxes: Healthy -> Warning: 2 of 6 mailboxes unhealthy (33%, warning at 30%)",
			"Warning UnhealthyMailboxes: Warning -> Paused: 3 of 6 mailboxes unhealthy (50%, pause at 50%)",
			"Normal CooldownElapsed: Paused -> Recovering: cooldown of 5s (pause 1) elapsed; 3 of 6 mailboxes unhealthy (50%, pause at 50%)",
			"Normal MailboxesRecovered: Recovering -> Healthy: "+d.Status.HealthMessage,
		))
		var suspends, unsuspends []string
		for _, id := range ids {
			suspends = append(suspends, fmt.Sprintf("PUT /email-accounts/suspend/%d", id))
			unsuspends = append(unsuspends, fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id))
		}
		calls := f.SL.CallStrings()
		Expect(calls).To(HaveLen(12))
		Expect(calls[:6]).To(ConsistOf(suspends))
		Expect(calls[6:]).To(ConsistOf(unsuspends))
	})

	It("below minimumMailboxes: Warning at 1 unhealthy mailbox, Paused at 2; Observe calls nothing", func() {
		f := newFixture(bgv1.ModeObserve)
		mbs, _ := f.fleet("small.io", 2)
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "small.io", Namespace: f.NS}}
		tenant.Record(mbs[0], 60, 3)
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthWarning))
		Expect(d.Status.HealthMessage).To(Equal("1 of 2 mailboxes unhealthy (fewer than 3 mailboxes: warning at 1, pause at 2)"))
		tenant.Record(mbs[1], 60, 3)
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthPaused))
		Eventually(tenant.Condition(d, bgv1.ConditionPaused)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "NotEnforced")))
		Eventually(tenant.Condition(mbs[0], bgv1.ConditionPaused)).Should(HaveField("Reason", "NotEnforced"))
		Expect(f.SL.Calls()).To(BeEmpty())
	})

	It("the safety limit holds a fleet-wide pause at 50% and waits for a person", func() {
		f := newFixture(bgv1.ModeObserve, func(s *bgv1.ProtectionPolicySpec) {
			s.Recovery.Cooldown.Duration, s.Recovery.MaxCooldown.Duration = time.Hour, time.Hour
		})
		var mbs []*bgv1.Mailbox
		var ids []int64
		for i := 0; i < 10; i++ { // one mailbox per domain: no domain cascade here
			email := fmt.Sprintf("box@d%d.example", i)
			ids = append(ids, f.SL.AddAccount(email))
			mbs = append(mbs, f.Mailbox(email, ids[i]))
		}
		for _, mb := range mbs[:7] { // e.g. a broken payload format makes 7 of 10 look bouncing
			tenant.Record(mb, 100, 5)
		}
		for _, mb := range mbs[:7] {
			Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused))
		}
		f.SetMode(bgv1.ModeEnforce)

		countSuspended := func() int { return len(slices.DeleteFunc(f.suspended(ids), func(b bool) bool { return !b })) }
		Eventually(countSuspended).Should(Equal(5))
		Consistently(countSuspended).WithTimeout(2*time.Second).Should(Equal(5), "never more than 50% of 10")
		held := 0
		for _, mb := range mbs[:7] {
			c := tenant.Condition(mb, bgv1.ConditionPaused)(Default)
			if c.Reason == "SafetyLimit" {
				held++
				Expect(c.Message).To(Equal("not paused in Smartlead: pausing one more would pause 6 of 10 mailboxes (60%, limit 50%)"))
			}
		}
		Expect(held).To(Equal(2))
		Eventually(tenant.Condition(f.Policy, bgv1.ConditionPausingAllowed)).Should(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "SafetyLimit"), HaveField("Message", HavePrefix("2 mailbox(es) not paused in Smartlead"))))
		Eventually(tenant.EventsFor(tenant.KindOf(f.Policy, "ProtectionPolicy"))).Should(ContainElement(HavePrefix("Warning SafetyLimit: ")))

		By("a person decides: the limit is raised and the held pauses go ahead")
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), f.Policy); err != nil {
				return err
			}
			f.Policy.Spec.Safety.MaxPausedPercent = 80
			return k8s.Update(ctx, f.Policy)
		})).To(Succeed())
		Eventually(countSuspended).Should(Equal(7))
		Eventually(tenant.Condition(f.Policy, bgv1.ConditionPausingAllowed)).Should(HaveField("Status", metav1.ConditionTrue))
	})
})
