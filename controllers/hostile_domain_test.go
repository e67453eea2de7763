package controllers_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

var _ = Describe("Hostile compositions at the domain", func() {
	// An unsigned trial policy in the same namespace as the signed Enforce policy "default" accepts anyone's
	// webhooks on its organization id: the receiver discovers Mailboxes under it for any address and counts
	// forged bounces into them (its own Mailboxes, as routing allows). The Domain must not let those turn
	// into a cascade that pauses the signed policy's mailboxes in Smartlead: an unauthenticated request
	// never pauses a mailbox, directly or through its domain.
	It("mailboxes of an unsigned sibling policy, bounced by forged webhooks, do not pause the signed policy's domain", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown)
		_, ids := f.fleet("acme.com", 2)
		trial := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "trial", Namespace: f.NS},
			Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeObserve, AutoDiscover: ptrTo(true),
				Smartlead: bgv1.SmartleadSettings{OrganizationID: "trial-" + f.Org, Sync: bgv1.SyncSettings{Interval: &metav1.Duration{}}}}}
		Expect(k8s.Create(ctx, trial)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, trial) })
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: f.NS}}
		Eventually(func() int32 { _ = k8s.Get(ctx, client.ObjectKeyFromObject(d), d); return d.Status.Mailboxes }).Should(Equal(int32(2)))

		By("two Mailboxes discovered under the trial policy by unsigned webhooks, each bounced past the pause threshold")
		for i := range 2 {
			email := fmt.Sprintf("forged%d@acme.com", i)
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("forged%d-acme-com", i), Namespace: f.NS,
				Labels: map[string]string{bgv1.LabelManagedBy: bgv1.ManagedByValue}},
				Spec: bgv1.MailboxSpec{Email: email, PolicyRef: bgv1.LocalPolicyReference{Name: "trial"}}}
			Expect(k8s.Create(ctx, mb)).To(Succeed())
			tenant.Record(mb, 60, 5)
			Eventually(func() bgv1.Health { _ = k8s.Get(ctx, client.ObjectKeyFromObject(mb), mb); return mb.Status.Health }).
				Should(Equal(bgv1.HealthPaused))
		}
		Consistently(func() []bool { return f.suspended(ids) }).WithTimeout(3*time.Second).Should(Equal(repeat(false, 2)),
			"forged bounces in the unsigned policy's Mailboxes paused the signed policy's accounts through their domain")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		Expect(d.Status.Health).NotTo(Equal(bgv1.HealthPaused))
	})

	// The same composition the other way round: the namespace's "default" (which governs the Domains
	// bounceguard creates) is the unsigned trial, and the signed Enforce policy has another name. The
	// Domain is the trial's and counts the forged Mailboxes; a signed policy's mailbox must not follow a
	// pause of a Domain whose policy takes unauthenticated webhooks.
	It("a signed policy's mailboxes do not follow the pause of a Domain governed by an unsigned policy", func() {
		f := newFixture(bgv1.ModeEnforce, tenant.LongCooldown)
		prod := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: f.NS}, Spec: *f.Policy.Spec.DeepCopy()}
		Expect(k8s.Create(ctx, prod)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, prod) })
		Expect(retry.RetryOnConflict(tenant.ConflictRetry, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(f.Policy), f.Policy); err != nil {
				return err
			}
			f.Policy.Spec.Mode, f.Policy.Spec.Smartlead.WebhookSecretRef = bgv1.ModeObserve, nil
			f.Policy.Spec.Smartlead.OrganizationID = "trial-" + f.Org
			return k8s.Update(ctx, f.Policy)
		})).To(Succeed())
		var ids []int64
		for i := range 2 {
			email := fmt.Sprintf("real%d@acme.com", i)
			id := f.SL.AddAccount(email)
			ids = append(ids, id)
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("real%d-acme-com", i), Namespace: f.NS},
				Spec: bgv1.MailboxSpec{Email: email, SmartleadAccountID: ptrTo(id), PolicyRef: bgv1.LocalPolicyReference{Name: "prod"}}}
			Expect(k8s.Create(ctx, mb)).To(Succeed())
		}
		for i := range 2 {
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("forged%d-acme-com", i), Namespace: f.NS,
				Labels: map[string]string{bgv1.LabelManagedBy: bgv1.ManagedByValue}},
				Spec: bgv1.MailboxSpec{Email: fmt.Sprintf("forged%d@acme.com", i)}}
			Expect(k8s.Create(ctx, mb)).To(Succeed())
			tenant.Record(mb, 60, 5)
		}
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: f.NS}}
		Eventually(tenant.DomainHealth(d)).Should(Equal(bgv1.HealthPaused), "the trial's own Domain may say Paused (Observe)")
		Consistently(func() []bool { return f.suspended(ids) }).WithTimeout(3*time.Second).Should(Equal(repeat(false, 2)),
			"the signed policy's accounts were paused by an unsigned policy's Domain")
	})
})

func ptrTo[T any](v T) *T { return &v }
