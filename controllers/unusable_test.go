package controllers

import (
	"context"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// countingProvider fails the test's expectations by counting every client asked for.
type countingProvider struct{ asked int }

func (p *countingProvider) For(context.Context, Credentials) (smartlead.Client, error) {
	p.asked++
	return nil, ErrNoAPIKey
}

// An Enforce policy without a webhook secret can no longer be created (schema rule), but one created
// before the rule existed still can be read: its paused mailbox keeps its Smartlead state as it is, no
// call is made, and both say why.
func TestEnforceWithoutWebhookSecretMakesNoCall(t *testing.T) {
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "old", Generation: 1},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeEnforce, Smartlead: bgv1.SmartleadSettings{OrganizationID: "org",
			APIKeySecretRef: &bgv1.SecretKeySelector{Name: "sl", Key: "apiKey"}}}}
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "old", Generation: 1, ResourceVersion: "7"},
		Spec: bgv1.MailboxSpec{Email: "ann@acme.com", SmartleadAccountID: ptr.To[int64](9), PolicyRef: bgv1.LocalPolicyReference{Name: "default"}},
		Status: bgv1.MailboxStatus{Health: bgv1.HealthHealthy, Smartlead: bgv1.SmartleadState{AccountID: 9, Paused: true, Suspended: true,
			Action: bgv1.PauseActionSuspend, Reason: "BounceThreshold"}}}
	b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, mb).
		WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{})
	for _, ix := range index.Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	c := b.Build()
	provider := &countingProvider{}
	rec := events.NewFakeRecorder(10)
	r := &MailboxReconciler{Client: c, Recorder: rec, Smartlead: provider}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(mb)}); err != nil {
		t.Fatal(err)
	}
	if provider.asked != 0 {
		t.Fatalf("Smartlead was asked for a client %d times", provider.asked)
	}
	var got bgv1.Mailbox
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(mb), &got); err != nil {
		t.Fatal(err)
	}
	ready := apimeta.FindStatusCondition(got.Status.Conditions, bgv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != bgv1.ReasonWebhookSecretRequired {
		t.Fatalf("Ready = %+v", ready)
	}
	if !got.Status.Smartlead.Suspended || !got.Status.Smartlead.Paused {
		t.Fatalf("the Smartlead state was changed: %+v", got.Status.Smartlead)
	}
	if ev := <-rec.Events; !strings.HasPrefix(ev, "Warning WebhookSecretRequired ") {
		t.Fatalf("event %q", ev)
	}

	pr := &ProtectionPolicyReconciler{Client: c, Recorder: rec}
	if _, err := pr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(policy)}); err != nil {
		t.Fatal(err)
	}
	var p bgv1.ProtectionPolicy
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(policy), &p); err != nil {
		t.Fatal(err)
	}
	if cond := apimeta.FindStatusCondition(p.Status.Conditions, bgv1.ConditionReady); cond == nil || cond.Reason != bgv1.ReasonWebhookSecretRequired {
		t.Fatalf("policy Ready = %+v", cond)
	}
}
