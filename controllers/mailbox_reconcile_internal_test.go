package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// failingProvider cannot hand out a Smartlead client, for a reason that is not a missing API key.
type failingProvider struct{ err error }

func (p failingProvider) For(context.Context, Credentials) (smartlead.Client, error) {
	return nil, p.err
}

// status.observedGeneration says which spec the status describes: a reconcile that failed half-way (its
// Domain could not be made, Smartlead's client could not be had) leaves it at the generation it last
// reconciled to the end, and the next reconcile that succeeds moves it on.
func TestObservedGenerationOnlyOnSuccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode bgv1.Mode
		hold string // the mailbox's hold annotation: in Enforce, a wanted pause
		// failDomain makes creating the mailbox's Domain fail; provider is the Smartlead provider.
		failDomain bool
		provider   SmartleadProvider
	}{
		{name: "its Domain cannot be made", mode: bgv1.ModeObserve, failDomain: true},
		{name: "Smartlead's client cannot be had", mode: bgv1.ModeEnforce, hold: "by hand",
			provider: failingProvider{errors.New("reading Secret \"smartlead\": connection refused")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns", Generation: 1},
				Spec: bgv1.ProtectionPolicySpec{Mode: tc.mode, Smartlead: bgv1.SmartleadSettings{
					APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
					WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "ns", Generation: 2},
				Spec:   bgv1.MailboxSpec{Email: "ann@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}},
				Status: bgv1.MailboxStatus{ObservedGeneration: 1}}
			if tc.hold != "" {
				mb.Annotations = map[string]string{bgv1.AnnotationHold: tc.hold}
			}
			failing := true
			b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, mb).
				WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{}, &bgv1.Domain{}).
				WithInterceptorFuncs(interceptor.Funcs{
					Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
						if _, ok := obj.(*bgv1.Domain); ok && tc.failDomain && failing {
							return errors.New("the API server is away")
						}
						return c.Create(ctx, obj, opts...)
					},
				})
			for _, ix := range index.Indexes {
				b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
			}
			c := b.Build()
			r := &MailboxReconciler{Client: c, Recorder: events.NewFakeRecorder(100), Smartlead: tc.provider}
			key := client.ObjectKeyFromObject(mb)
			observed := func() int64 {
				var got bgv1.Mailbox
				if err := c.Get(ctx, key, &got); err != nil {
					t.Fatal(err)
				}
				return got.Status.ObservedGeneration
			}

			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err == nil {
				t.Fatal("the reconcile succeeded; the test needs it to fail")
			}
			if got := observed(); got != 1 {
				t.Fatalf("status.observedGeneration %d after a failed reconcile, want 1 (the last one reconciled to the end)", got)
			}

			// Fixed: the Domain is made; the API key's Secret is read and found wanting, which the mailbox
			// reports (Ready False, SmartleadUnavailable) as the outcome of a whole reconcile.
			failing = false
			r.Smartlead = failingProvider{fmt.Errorf("%w: Secret \"smartlead\" not found", ErrNoAPIKey)}
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
			if got := observed(); got != 2 {
				t.Fatalf("status.observedGeneration %d after a successful reconcile, want 2", got)
			}
		})
	}
}
