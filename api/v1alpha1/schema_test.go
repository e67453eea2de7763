package v1alpha1_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

func policy(name string, mutate func(*bgv1.ProtectionPolicy)) *bgv1.ProtectionPolicy {
	p := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// validPolicyObject returns a complete, valid Enforce policy as kubectl would send it; table entries
// change one field of it at a time.
func validPolicyObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(`
apiVersion: bounceguard.io/v1alpha1
kind: ProtectionPolicy
metadata: {name: p, namespace: default}
spec:
  mode: Enforce
  mailbox:
    warning: {bounces: 3, withinSends: 60}
    pause: {bounces: 5, withinSends: 100}
    countSoftBounces: false
  domain: {warningPercent: 30, pausePercent: 50, minimumMailboxes: 3}
  recovery: {automatic: true, cooldown: 1h, maxCooldown: 16h, cleanSends: 25}
  smartlead:
    organizationID: 123e4567-e89b-12d3-a456-426614174000
    apiKeySecretRef: {name: smartlead, key: apiKey}
    webhookSecretRef: {name: smartlead, key: webhookSecret}
    baseURL: https://server.smartlead.ai/api/v1
    pauseAction: RemoveFromCampaigns
  autoDiscover: true
  safety: {maxPausedPercent: 50, minimumMailboxes: 10}
`), &u.Object)).To(Succeed())
	return u
}

var _ = Describe("CRDs", func() {
	It("installs all three kinds, namespaced, with short names and printer columns", func() {
		want := map[string][]string{
			"mailboxes.bounceguard.io":          {"Email", "Health", "Window", "Sent", "Bounced", "Paused", "Age"},
			"domains.bounceguard.io":            {"Health", "Mailboxes", "Unhealthy(%)", "Paused", "Age"},
			"protectionpolicies.bounceguard.io": {"Mode", "Mailboxes", "Paused", "Ready", "Age"},
		}
		for name, columns := range want {
			var crd apiextensionsv1.CustomResourceDefinition
			Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, &crd)).To(Succeed())
			Expect(crd.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped), name)
			Expect(crd.Spec.Names.ShortNames).NotTo(BeEmpty(), name)
			Expect(crd.Spec.Versions).To(HaveLen(1))
			v := crd.Spec.Versions[0]
			Expect(v.Name).To(Equal("v1alpha1"))
			Expect(v.Subresources.Status).NotTo(BeNil(), name)
			var got []string
			for _, c := range v.AdditionalPrinterColumns {
				got = append(got, c.Name)
			}
			Expect(got).To(Equal(columns), name)
		}
	})
})

var _ = Describe("ProtectionPolicy defaults", func() {
	It("fills every documented default into an empty policy", func() {
		p := policy("defaults", nil)
		Expect(k8s.Create(ctx, p)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, p)
		s := p.Spec
		Expect(s.Mode).To(Equal(bgv1.ModeObserve))
		Expect(s.Mailbox.Warning).To(Equal(bgv1.Threshold{Bounces: 3, WithinSends: 60}))
		Expect(s.Mailbox.Pause).To(Equal(bgv1.Threshold{Bounces: 5, WithinSends: 100}))
		Expect(s.Mailbox.CountSoftBounces).To(BeFalse())
		Expect(s.Domain).To(Equal(bgv1.DomainRules{WarningPercent: 30, PausePercent: 50, MinimumMailboxes: 3}))
		Expect(s.Recovery.Automatic).To(Equal(ptr.To(true)))
		Expect(s.Recovery.Cooldown.Duration).To(Equal(time.Hour))
		Expect(s.Recovery.MaxCooldown.Duration).To(Equal(16 * time.Hour))
		Expect(s.Recovery.CleanSends).To(Equal(int32(25)))
		Expect(s.Smartlead.BaseURL).To(Equal("https://server.smartlead.ai/api/v1"))
		Expect(s.Smartlead.PauseAction).To(Equal(bgv1.PauseActionSuspend))
		Expect(s.Smartlead.RateLimit).To(Equal(bgv1.SmartleadRateLimit{RequestsPerMinute: 60, Burst: 10}))
		Expect(s.AutoDiscover).To(Equal(ptr.To(true)))
		Expect(s.Safety).To(Equal(bgv1.SafetyRules{MaxPausedPercent: 50, MinimumMailboxes: 10}))
	})

	It("keeps the defaults of a partly given threshold block's siblings", func() {
		p := policy("partial", func(p *bgv1.ProtectionPolicy) {
			p.Spec.Mailbox.Pause = bgv1.Threshold{Bounces: 10, WithinSends: 150}
			p.Spec.Recovery.CleanSends = 40
		})
		Expect(k8s.Create(ctx, p)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, p)
		Expect(p.Spec.Mailbox.Warning).To(Equal(bgv1.Threshold{Bounces: 3, WithinSends: 60}))
		Expect(p.Spec.Mailbox.Pause).To(Equal(bgv1.Threshold{Bounces: 10, WithinSends: 150}))
		Expect(p.Spec.Recovery.CleanSends).To(Equal(int32(40)))
		Expect(p.Spec.Recovery.Cooldown.Duration).To(Equal(time.Hour))
	})

	It("rejects a pause that is looser than the default warning, naming the rule", func() {
		p := policy("stricter-warning", func(p *bgv1.ProtectionPolicy) {
			p.Spec.Mailbox.Pause = bgv1.Threshold{Bounces: 8, WithinSends: 200} // 4% < the default warning's 5%
		})
		Expect(k8s.Create(ctx, p, client.DryRunAll)).To(MatchError(ContainSubstring("warning must be looser than pause")))
	})
})

var _ = Describe("Mailbox and Domain defaults", func() {
	It("defaults a Mailbox's policyRef to the policy named default", func() {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "default"},
			Spec: bgv1.MailboxSpec{Email: "alice@acme.com"}}
		Expect(k8s.Create(ctx, mb)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, mb)
		Expect(mb.Spec.PolicyRef.Name).To(Equal("default"))
		Expect(mb.Spec.SmartleadAccountID).To(BeNil())
	})

	It("defaults a Domain's policyRef to the policy named default", func() {
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: "default"}}
		Expect(k8s.Create(ctx, d)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, d)
		Expect(d.Spec.PolicyRef.Name).To(Equal("default"))
	})
})

var _ = Describe("validation", func() {
	DescribeTable("rejects a bad ProtectionPolicy with a clear message",
		func(value any, message string, path ...string) {
			u := validPolicyObject()
			if value == nil {
				unstructured.RemoveNestedField(u.Object, path...)
			} else {
				Expect(unstructured.SetNestedField(u.Object, value, path...)).To(Succeed())
			}
			err := k8s.Create(ctx, u, client.DryRunAll)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("unknown mode", "Panic", `Unsupported value: "Panic"`, "spec", "mode"),
		Entry("warning bounces < 1", int64(0),
			"spec.mailbox.warning.bounces in body should be greater than or equal to 1", "spec", "mailbox", "warning", "bounces"),
		Entry("pause bounces < 1", int64(0),
			"spec.mailbox.pause.bounces in body should be greater than or equal to 1", "spec", "mailbox", "pause", "bounces"),
		Entry("withinSends < bounces", int64(4),
			"withinSends must be at least bounces", "spec", "mailbox", "pause", "withinSends"),
		Entry("withinSends > 1000", int64(1001),
			"spec.mailbox.pause.withinSends in body should be less than or equal to 1000", "spec", "mailbox", "pause", "withinSends"),
		Entry("warning not looser than pause: as many bounces", int64(5),
			"warning must be looser than pause", "spec", "mailbox", "warning", "bounces"),
		Entry("warning not looser than pause: higher rate", int64(20),
			"warning must be looser than pause", "spec", "mailbox", "warning", "withinSends"),
		Entry("warningPercent 0", int64(0),
			"spec.domain.warningPercent in body should be greater than or equal to 1", "spec", "domain", "warningPercent"),
		Entry("pausePercent over 100", int64(101),
			"spec.domain.pausePercent in body should be less than or equal to 100", "spec", "domain", "pausePercent"),
		Entry("warningPercent above pausePercent", int64(60),
			"warningPercent must not exceed pausePercent", "spec", "domain", "warningPercent"),
		Entry("minimumMailboxes 0", int64(0),
			"spec.domain.minimumMailboxes in body should be greater than or equal to 1", "spec", "domain", "minimumMailboxes"),
		Entry("cooldown zero", "0s", "cooldown must be positive", "spec", "recovery", "cooldown"),
		Entry("cooldown negative", "-5m", "cooldown must be positive", "spec", "recovery", "cooldown"),
		Entry("cooldown not a duration", "soon", "spec.recovery.cooldown in body must be of type duration", "spec", "recovery", "cooldown"),
		Entry("maxCooldown below cooldown", "30m", "maxCooldown must be at least cooldown", "spec", "recovery", "maxCooldown"),
		Entry("cleanSends 0", int64(0),
			"spec.recovery.cleanSends in body should be greater than or equal to 1", "spec", "recovery", "cleanSends"),
		Entry("Enforce without an API key", nil, "Enforce mode needs smartlead.apiKeySecretRef",
			"spec", "smartlead", "apiKeySecretRef"),
		Entry("Enforce without a webhook secret: unauthenticated events could pause", nil,
			"Enforce mode needs smartlead.webhookSecretRef", "spec", "smartlead", "webhookSecretRef"),
		Entry("more than 20 bounces", int64(21), "spec.mailbox.pause.bounces in body should be less than or equal to 20",
			"spec", "mailbox", "pause", "bounces"),
		Entry("unknown pauseAction", "Delete", `Unsupported value: "Delete"`, "spec", "smartlead", "pauseAction"),
		Entry("rateLimit requestsPerMinute 0", int64(0),
			"spec.smartlead.rateLimit.requestsPerMinute in body should be greater than or equal to 1", "spec", "smartlead", "rateLimit", "requestsPerMinute"),
		Entry("rateLimit requestsPerMinute above 6000", int64(6001),
			"spec.smartlead.rateLimit.requestsPerMinute in body should be less than or equal to 6000", "spec", "smartlead", "rateLimit", "requestsPerMinute"),
		Entry("rateLimit burst 0", int64(0),
			"spec.smartlead.rateLimit.burst in body should be greater than or equal to 1", "spec", "smartlead", "rateLimit", "burst"),
		Entry("rateLimit burst above the default 60 a minute", int64(70),
			"burst must not exceed requestsPerMinute", "spec", "smartlead", "rateLimit", "burst"),
		Entry("baseURL not http(s)", "ftp://x", "spec.smartlead.baseURL in body should match", "spec", "smartlead", "baseURL"),
		Entry("organizationID with spaces", "a b", "spec.smartlead.organizationID in body should match",
			"spec", "smartlead", "organizationID"),
		Entry("secret ref without key", nil, "spec.smartlead.webhookSecretRef.key: Required value",
			"spec", "smartlead", "webhookSecretRef", "key"),
		Entry("maxPausedPercent 0", int64(0),
			"spec.safety.maxPausedPercent in body should be greater than or equal to 1", "spec", "safety", "maxPausedPercent"),
		Entry("safety minimumMailboxes negative", int64(-1),
			"spec.safety.minimumMailboxes in body should be greater than or equal to 0", "spec", "safety", "minimumMailboxes"),
	)

	It("accepts a complete, valid Enforce policy", func() {
		Expect(k8s.Create(ctx, validPolicyObject(), client.DryRunAll)).To(Succeed())
	})

	DescribeTable("rejects a bad Mailbox with a clear message",
		func(email string, message string) {
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"},
				Spec: bgv1.MailboxSpec{Email: email}}
			err := k8s.Create(ctx, mb, client.DryRunAll)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("missing email", "", "spec.email"),
		Entry("not an address", "alice", "spec.email in body should match"),
		Entry("uppercase", "Alice@acme.com", "spec.email in body should match"),
		Entry("no domain dot", "alice@localhost", "spec.email in body should match"),
	)

	It("rejects a Mailbox account id below 1", func() {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"},
			Spec: bgv1.MailboxSpec{Email: "a@acme.com", SmartleadAccountID: ptr.To[int64](0)}}
		err := k8s.Create(ctx, mb, client.DryRunAll)
		Expect(err).To(MatchError(ContainSubstring("spec.smartleadAccountID in body should be greater than or equal to 1")))
	})

	It("keeps a Mailbox's email immutable", func() {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "immutable", Namespace: "default"},
			Spec: bgv1.MailboxSpec{Email: "dave@acme.com", SmartleadAccountID: ptr.To[int64](7)}}
		Expect(k8s.Create(ctx, mb)).To(Succeed())
		DeferCleanup(k8s.Delete, ctx, mb)
		mb.Spec.Email = "eve@acme.com"
		Expect(k8s.Update(ctx, mb)).To(MatchError(ContainSubstring("email is immutable")))
	})

	It("rejects a Domain whose name is not a domain", func() {
		d := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "localhost", Namespace: "default"}}
		Expect(k8s.Create(ctx, d, client.DryRunAll)).To(MatchError(ContainSubstring("metadata.name must be a domain name")))
	})
})
