package trust

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// A mailbox of a policy with a webhook secret follows only a Domain whose policy has one too: the Domain of
// an unsigned policy counts Mailboxes anyone who knows its organization id can create and bounce. (The
// receiver's gate applies it: TestGateOfASignedPolicyIgnoresAnUnsignedPolicysDomain.)
func TestSignedMailboxFollowsOnlyASignedDomain(t *testing.T) {
	domainOf := func(policy string) *bgv1.Domain {
		return &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: "acme"},
			Spec:   bgv1.DomainSpec{PolicyRef: bgv1.LocalPolicyReference{Name: policy}},
			Status: bgv1.DomainStatus{Health: bgv1.HealthPaused, HealthMessage: "2 of 3 mailboxes unhealthy (66%, pause at 50%)"}}
	}
	signed := func(name, org string) *bgv1.ProtectionPolicy {
		return &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme"},
			Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
				WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
	}
	trial := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "trial", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(true), Smartlead: bgv1.SmartleadSettings{OrganizationID: "trial-org"}}}
	c := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).
		WithObjects(signed("default", "org-1"), trial, signed("second", "org-2")).Build()
	policy := func(name string) *bgv1.ProtectionPolicy {
		var p bgv1.ProtectionPolicy
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: name}, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	for _, tc := range []struct {
		mailboxPolicy, domainPolicy string
		follows                     bool
	}{
		{"default", "default", true}, // signed, its own Domain
		{"default", "", true},        // "" is "default"
		{"default", "second", true},  // another signed policy's Domain
		{"default", "trial", false},  // an unsigned policy's Domain
		{"default", "missing", false},
		{"trial", "trial", true}, // an unsigned mailbox follows any Domain
		{"trial", "default", true},
	} {
		got, err := FollowsDomain(context.Background(), c, policy(tc.mailboxPolicy), domainOf(tc.domainPolicy))
		if err != nil || got != tc.follows {
			t.Errorf("a %s mailbox, a Domain of %q: follows=%v (%v), want %v", tc.mailboxPolicy, tc.domainPolicy, got, err, tc.follows)
		}
	}
}
