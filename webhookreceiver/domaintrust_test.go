package webhookreceiver

import (
	"context"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// The gate of a policy with a webhook secret allows its healthy mailbox whatever the Domain of an unsigned
// policy says: that Domain counts Mailboxes anyone who knows its organization id can create and bounce
// (trust.FollowsDomain; its table is TestSignedMailboxFollowsOnlyASignedDomain in internal/trust).
func TestGateOfASignedPolicyIgnoresAnUnsignedPolicysDomain(t *testing.T) {
	s, c := siblingPolicies(t, nil)
	unsignedDomain := &bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "acme.com", Namespace: "acme"},
		Spec:   bgv1.DomainSpec{PolicyRef: bgv1.LocalPolicyReference{Name: "trial"}},
		Status: bgv1.DomainStatus{Health: bgv1.HealthPaused, HealthMessage: "2 of 3 mailboxes unhealthy (66%, pause at 50%)"}}
	if err := c.Create(context.Background(), unsignedDomain); err != nil {
		t.Fatal(err)
	}
	var enforce bgv1.ProtectionPolicy
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "default"}, &enforce); err != nil {
		t.Fatal(err)
	}
	s.Log = logr.Discard()
	enforce.Spec.Mode = bgv1.ModeEnforce
	answer, code, msg := s.gate(context.Background(), []*bgv1.ProtectionPolicy{&enforce}, "alice@acme.com", "")
	if code != 200 || !answer.Allowed || len(answer.Reasons) != 0 {
		t.Fatalf("the gate of the signed policy for its healthy mailbox under an unsigned policy's Paused Domain: %d %s %+v", code, msg, answer)
	}
}
