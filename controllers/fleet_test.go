package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// handlerInformer is an informer that hands its one handler to the test, which plays the events.
type handlerInformer struct {
	h      toolscache.ResourceEventHandler
	synced bool
}

func (i *handlerInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	i.h = h
	return i, nil
}
func (i *handlerInformer) HasSynced() bool { return i.synced }
func (i *handlerInformer) HasSyncedChecker() toolscache.DoneChecker {
	panic("not used")
}

// randomMailbox is a mailbox in one of two namespaces, under one of three policies, in any state the
// counts distinguish.
func randomMailbox(rng *rand.Rand, name string) *bgv1.Mailbox {
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: []string{"a", "b"}[rng.IntN(2)]},
		Spec: bgv1.MailboxSpec{Email: name + "@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: []string{"", "p", "q"}[rng.IntN(3)]}},
		Status: bgv1.MailboxStatus{Health: []bgv1.Health{"", bgv1.HealthHealthy, bgv1.HealthWarning, bgv1.HealthPaused,
			bgv1.HealthRecovering}[rng.IntN(5)]}}
	if rng.IntN(3) == 0 {
		mb.Status.Smartlead.Paused, mb.Status.Smartlead.Action = true, bgv1.PauseActionSuspend
	}
	switch rng.IntN(4) {
	case 0:
		mb.Status.Conditions = []metav1.Condition{{Type: bgv1.ConditionPaused, Status: metav1.ConditionTrue, Reason: "BounceThreshold"}}
	case 1:
		mb.Status.Conditions = []metav1.Condition{{Type: bgv1.ConditionPaused, Status: metav1.ConditionFalse, Reason: bgv1.ReasonSafetyLimit,
			Message: "limit " + name}}
	}
	return mb
}

// Whatever sequence of adds, updates (state and policy changes), deletes and lost deletes the informer
// delivers, every policy's counts equal the counts listed afresh from the mailboxes that remain, and
// every policy whose counts changed is queued for a reconcile.
func TestFleetCountsEqualAFreshListing(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		inf := &handlerInformer{}
		f := &Fleet{}
		if err := f.Watch(inf); err != nil {
			t.Fatal(err)
		}
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		if err := f.Source().Start(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		live := map[types.NamespacedName]*bgv1.Mailbox{}
		for step := range 400 {
			name := fmt.Sprintf("m%d", rng.IntN(40))
			var key types.NamespacedName
			var old *bgv1.Mailbox
			for k, mb := range live {
				if k.Name == name {
					key, old = k, mb
				}
			}
			var touched []types.NamespacedName
			switch {
			case old == nil:
				mb := randomMailbox(rng, name)
				inf.h.OnAdd(mb, false)
				live[client.ObjectKeyFromObject(mb)] = mb
				touched = append(touched, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()})
			case rng.IntN(4) == 0:
				if rng.IntN(2) == 0 {
					inf.h.OnDelete(old)
				} else {
					inf.h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: key.String(), Obj: old})
				}
				delete(live, key)
				touched = append(touched, types.NamespacedName{Namespace: old.Namespace, Name: old.PolicyName()})
			default:
				mb := randomMailbox(rng, name)
				mb.Namespace = old.Namespace
				inf.h.OnUpdate(old, mb)
				live[key] = mb
				if factsOf(old) != factsOf(mb) {
					touched = append(touched, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()},
						types.NamespacedName{Namespace: old.Namespace, Name: old.PolicyName()})
				}
			}
			queued := map[types.NamespacedName]bool{}
			for q.Len() > 0 {
				r, _ := q.Get()
				queued[r.NamespacedName] = true
				q.Done(r)
			}
			for _, p := range touched {
				if !queued[p] {
					t.Fatalf("seed %d step %d: policy %s changed and was not queued (queued %v)", seed, step, p, queued)
				}
			}
			for _, ns := range []string{"a", "b"} {
				for _, name := range []string{"default", "p", "q"} {
					p := types.NamespacedName{Namespace: ns, Name: name}
					var want PolicyCounts
					for _, mb := range live {
						if mb.Namespace == ns && mb.PolicyName() == name {
							want.add(factsOf(mb), 1)
						}
					}
					got := f.Counts(p)
					// Which held mailbox's message is shown is not fixed; that one is shown when any is held is.
					if (got.HeldMessage == "") != (want.HeldMessage == "") {
						t.Fatalf("seed %d step %d: %s held message %q, want one like %q", seed, step, p, got.HeldMessage, want.HeldMessage)
					}
					got.HeldMessage, want.HeldMessage = "", ""
					if got != want {
						t.Fatalf("seed %d step %d: %s counts %+v, want %+v", seed, step, p, got, want)
					}
				}
			}
		}
	}
}

// The safety limit counts from the fleet: the pauses held, plus the reservations the cache does not
// show yet, never the asking mailbox itself; and until the fleet has synced it lists instead.
func TestSafetyCountsFromTheFleet(t *testing.T) {
	ns := "t"
	var objs []client.Object
	inf := &handlerInformer{}
	fleet := &Fleet{}
	if err := fleet.Watch(inf); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("m%d", i), Namespace: ns},
			Spec: bgv1.MailboxSpec{Email: fmt.Sprintf("m%d@acme.com", i)}}
		if i < 2 {
			mb.Status.Smartlead.Paused, mb.Status.Smartlead.Action = true, bgv1.PauseActionSuspend
		}
		objs = append(objs, mb)
		inf.h.OnAdd(mb, true)
	}
	b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...)
	for _, ix := range index.Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	r := &MailboxReconciler{Client: b.Build(), Fleet: fleet}
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	policy.Spec.Safety.MaxPausedPercent = 30 // 3 of 10
	rules := protection.RulesFor(policy)
	for _, synced := range []bool{false, true} {
		inf.synced = synced
		r.pausedRecently = map[types.NamespacedName]bool{{Namespace: ns, Name: "m2"}: true} // paused, not yet in the cache
		if ok, msg := r.safetyAllows(context.Background(), objs[3].(*bgv1.Mailbox), rules); ok {
			t.Fatalf("synced=%v: a 4th pause of 10 allowed at 30%%", synced)
		} else if msg == "" {
			t.Fatalf("synced=%v: no reason given", synced)
		}
		delete(r.pausedRecently, types.NamespacedName{Namespace: ns, Name: "m2"})
		if ok, msg := r.safetyAllows(context.Background(), objs[3].(*bgv1.Mailbox), rules); !ok {
			t.Fatalf("synced=%v: a 3rd pause of 10 held back at 30%%: %s", synced, msg)
		}
		// Its own reservation does not count against it when it asks again.
		if ok, msg := r.safetyAllows(context.Background(), objs[3].(*bgv1.Mailbox), rules); !ok {
			t.Fatalf("synced=%v: asking again counted its own reservation: %s", synced, msg)
		}
	}
}

// The cost of a policy reconcile, and of the safety check of one more pause, at 1,000 and 10,000
// mailboxes: counted by the fleet (flat) against listed from the cache (grows with the fleet).
func BenchmarkPolicyReconcile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, counted := range []bool{false, true} {
			name := fmt.Sprintf("mailboxes=%d/listed", n)
			if counted {
				name = fmt.Sprintf("mailboxes=%d/counted", n)
			}
			b.Run(name, func(b *testing.B) {
				policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "bench", Generation: 1}}
				objs := []client.Object{policy}
				inf := &handlerInformer{synced: counted}
				fleet := &Fleet{}
				if err := fleet.Watch(inf); err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for i := range n {
					mb := randomMailbox(rng, fmt.Sprintf("m%d", i))
					mb.Namespace, mb.Spec.PolicyRef.Name = "bench", ""
					objs = append(objs, mb)
					inf.h.OnAdd(mb, true)
				}
				cb := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...).
					WithStatusSubresource(&bgv1.ProtectionPolicy{})
				for _, ix := range index.Indexes {
					cb = cb.WithIndex(ix.Object, ix.Field, ix.Extract)
				}
				c := cb.Build()
				pr := &ProtectionPolicyReconciler{Client: c, Recorder: events.NewFakeRecorder(1 << 20), Fleet: fleet}
				req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(policy)}
				b.ResetTimer()
				for b.Loop() {
					if _, err := pr.Reconcile(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
