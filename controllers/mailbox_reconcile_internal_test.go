package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// okProvider hands out a Smartlead client for any credentials (enforce only asks whether there is one).
type okProvider struct{}

func (okProvider) For(context.Context, Credentials) (smartlead.Client, error) { return nil, nil }

// recordingNotifier records the notices it is given.
type recordingNotifier struct {
	mu      sync.Mutex
	notices []bgv1.Notice
}

func (n *recordingNotifier) Notify(_ *bgv1.ProtectionPolicy, notice bgv1.Notice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, notice)
}
func (n *recordingNotifier) Retain(types.NamespacedName, *bgv1.ProtectionPolicy)     {}
func (n *recordingNotifier) Status(*bgv1.ProtectionPolicy) []bgv1.NotificationStatus { return nil }
func (n *recordingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.notices)
}

// What a Mailbox reconcile decided is announced (the transition's Event and notification) and queued (the
// Smartlead work) only once its status is written: a write that fails loses the state, and nothing is said
// or done for it; the retry that writes it says and does it all.
func TestMailboxEffectsOnlyAfterTheStatusWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   bgv1.Mode
		notice bool // the transition to Paused is announced (not in Enforce, where the pause itself is)
		queued bool // the pause is queued for Smartlead (Enforce)
	}{
		{name: "Suggest: the Event and the notification", mode: bgv1.ModeSuggest, notice: true},
		{name: "Enforce: the Event and the Smartlead work", mode: bgv1.ModeEnforce, queued: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns", Generation: 1},
				Spec: bgv1.ProtectionPolicySpec{Mode: tc.mode, Smartlead: bgv1.SmartleadSettings{
					APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
					WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
			mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "ns", Generation: 1,
				Annotations: map[string]string{bgv1.AnnotationHold: "by hand"}},
				Spec: bgv1.MailboxSpec{Email: "ann@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
			var failing atomic.Bool
			failing.Store(true)
			b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, mb).
				WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{}, &bgv1.Domain{}).
				WithInterceptorFuncs(interceptor.Funcs{
					SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
						opts ...client.SubResourcePatchOption) error {
						if _, ok := obj.(*bgv1.Mailbox); ok && failing.Load() {
							return errors.New("the API server is away")
						}
						return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
					},
				})
			for _, ix := range index.Indexes {
				b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
			}
			c := b.Build()
			rec := events.NewFakeRecorder(100)
			notifier := &recordingNotifier{}
			queued := make(chan types.NamespacedName, 10)
			r := &MailboxReconciler{Client: c, Recorder: rec, Smartlead: okProvider{}, Notifier: notifier}
			r.Queues = &SmartleadQueues{Carry: func(_ context.Context, key types.NamespacedName) error {
				queued <- key
				return nil
			}}
			go func() { _ = r.Queues.Start(ctx) }()
			key := client.ObjectKeyFromObject(mb)
			holdEvents := func() int {
				n := 0
				for {
					select {
					case e := <-rec.Events:
						if strings.Contains(e, " "+bgv1.ReasonHold+" ") {
							n++
						}
					default:
						return n
					}
				}
			}

			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err == nil {
				t.Fatal("the reconcile succeeded; the test needs its status write to fail")
			}
			if n := holdEvents(); n != 0 {
				t.Errorf("%d transition Events recorded for a state whose write failed", n)
			}
			if n := notifier.count(); n != 0 {
				t.Errorf("%d notifications for a state whose write failed: %+v", n, notifier.notices)
			}
			select {
			case k := <-queued:
				t.Errorf("%s queued for Smartlead although its state was not written", k)
			case <-time.After(200 * time.Millisecond):
			}

			failing.Store(false)
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
			if n := holdEvents(); n != 1 {
				t.Errorf("%d transition Events once the state is written, want 1", n)
			}
			if want := map[bool]int{true: 1}[tc.notice]; notifier.count() != want {
				t.Errorf("%d notifications once the state is written, want %d: %+v", notifier.count(), want, notifier.notices)
			}
			if tc.queued {
				select {
				case k := <-queued:
					if k != key {
						t.Errorf("queued %s, want %s", k, key)
					}
				case <-time.After(5 * time.Second):
					t.Error("the pause was not queued once the state was written")
				}
			}
		})
	}
}
