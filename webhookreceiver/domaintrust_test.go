package webhookreceiver

import (
	"context"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// A mailbox of a policy with a webhook secret follows only a Domain whose policy has one too: the Domain of
// an unsigned policy counts Mailboxes anyone who knows its organization id can create and bounce. The
// gate of the signed policy then allows a healthy mailbox whatever that Domain says.
func TestSignedMailboxFollowsOnlyASignedDomain(t *testing.T) {
	domainOf := func(policy string) *bgv1.Domain {
		return &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: "acme"},
			Spec:   bgv1.DomainSpec{PolicyRef: bgv1.LocalPolicyReference{Name: policy}},
			Status: bgv1.DomainStatus{Health: bgv1.HealthPaused, HealthMessage: "2 of 3 mailboxes unhealthy (66%, pause at 50%)"}}
	}
	second := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: "org-2",
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
	s, c := siblingPolicies(t, nil)
	if err := c.Create(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	policy := func(name string) *bgv1.ProtectionPolicy {
		var p bgv1.ProtectionPolicy
		if err := c.Get(context.Background(), keyOf("acme", name), &p); err != nil {
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
	if err := c.Create(context.Background(), domainOf("trial")); err != nil {
		t.Fatal(err)
	}
	s.Log = logr.Discard()
	enforce := policy("default")
	enforce.Spec.Mode = bgv1.ModeEnforce
	answer, code, msg := s.gate(context.Background(), []*bgv1.ProtectionPolicy{enforce}, "alice@acme.com", "")
	if code != 200 || !answer.Allowed || len(answer.Reasons) != 0 {
		t.Fatalf("the gate of the signed policy for its healthy mailbox under an unsigned policy's Paused Domain: %d %s %+v", code, msg, answer)
	}
}

func keyOf(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}
