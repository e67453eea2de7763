package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

func readyCondition(obj client.Object, conds func() []metav1.Condition) func(Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		return meta.FindStatusCondition(conds(), bgv1.ConditionReady)
	}
}

var _ = Describe("ProtectionPolicy controller", func() {
	It("reports Ready False while the API key Secret or its key is missing, and True once it is usable", func() {
		ns := tenant.NewNamespace()
		p := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
			Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeEnforce, Smartlead: bgv1.SmartleadSettings{
				APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
				WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		ready := readyCondition(p, func() []metav1.Condition { return p.Status.Conditions })

		Eventually(ready).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "SecretNotFound"),
			HaveField("Message", `Secret "smartlead" for the Smartlead API key not found`)))
		Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns},
			StringData: map[string]string{"other": "x"}}
		Expect(k8s.Create(ctx, secret)).To(Succeed())
		Eventually(ready).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", "SecretKeyMissing"),
			HaveField("Message", `Secret "smartlead" has no key "apiKey" for the Smartlead API key`)))

		secret.StringData = map[string]string{"apiKey": "sk-very-secret"}
		Expect(k8s.Update(ctx, secret)).To(Succeed())
		Eventually(ready).Should(And(HaveField("Reason", "SecretKeyMissing"),
			HaveField("Message", `Secret "smartlead" has no key "webhookSecret" for the Smartlead webhook secret`)))
		secret.StringData = map[string]string{"webhookSecret": "whsec-very-secret"}
		Expect(k8s.Update(ctx, secret)).To(Succeed())
		Eventually(ready).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(p.Status.Conditions[0].Message).NotTo(ContainSubstring("sk-very-secret"))
	})

	It("counts its mailboxes and records the generation it observed", func() {
		ns := tenant.NewNamespace()
		p := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		for _, email := range []string{"a@acme.com", "b@acme.com"} {
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{GenerateName: "mb-", Namespace: ns},
				Spec: bgv1.MailboxSpec{Email: email}}
			Expect(k8s.Create(ctx, mb)).To(Succeed())
		}
		other := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{GenerateName: "mb-", Namespace: ns},
			Spec: bgv1.MailboxSpec{Email: "c@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "other"}}}
		Expect(k8s.Create(ctx, other)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Status.Mailboxes).To(Equal(int32(2)))
			g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
		}).Should(Succeed())

		p.Spec.Mode = bgv1.ModeSuggest
		Expect(k8s.Update(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			g.Expect(p.Generation).To(Equal(int64(2)))
			g.Expect(p.Status.ObservedGeneration).To(Equal(int64(2)))
		}).Should(Succeed())
	})
})

var _ = Describe("Mailbox controller", func() {
	It("reports Ready False when its policy does not exist, and True once it does", func() {
		ns := tenant.NewNamespace()
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: ns},
			Spec: bgv1.MailboxSpec{Email: "alice@acme.com"}}
		Expect(k8s.Create(ctx, mb)).To(Succeed())
		ready := readyCondition(mb, func() []metav1.Condition { return mb.Status.Conditions })
		Eventually(ready).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "PolicyNotFound")))
		Expect(mb.Status.ObservedGeneration).To(Equal(mb.Generation))

		Expect(k8s.Create(ctx, &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}})).To(Succeed())
		Eventually(ready).Should(HaveField("Status", metav1.ConditionTrue))
	})
})
