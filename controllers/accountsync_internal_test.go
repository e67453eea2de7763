package controllers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// staticProvider hands out one Smartlead client.
type staticProvider struct{ c smartlead.Client }

func (p staticProvider) For(context.Context, Credentials) (smartlead.Client, error) { return p.c, nil }

// syncFleet is an organization of n accounts behind the stand-in, and a namespace holding the Mailboxes
// of all but the last `without` of them; writes counts the sync's creations and status writes.
type syncFleet struct {
	sl     *standin.Server
	ids    []int64
	r      *AccountSyncReconciler
	c      client.Client
	writes atomic.Int64
	now    time.Time
}

func newSyncFleet(tb testing.TB, n, without int) *syncFleet {
	tb.Helper()
	f := &syncFleet{sl: standin.New("key", "/api/v1"), now: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(f.sl)
	tb.Cleanup(srv.Close)
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "fleet", Generation: 1},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{BaseURL: srv.URL + "/api/v1",
			APIKeySecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}}}}
	objs := []client.Object{policy}
	for i := range n {
		email := fmt.Sprintf("box%05d@domain%03d.com", i, i%200)
		f.ids = append(f.ids, f.sl.AddAccount(email))
		if i < n-without {
			objs = append(objs, &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("box%05d", i), Namespace: "fleet"},
				Spec: bgv1.MailboxSpec{Email: email, PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}})
		}
	}
	f.c = fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...).
		WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				f.writes.Add(1)
				return c.Create(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if _, ok := obj.(*bgv1.Mailbox); ok {
					f.writes.Add(1)
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	sc, err := smartlead.New(srv.URL+"/api/v1", "key", smartlead.Options{Limiter: smartlead.NewLimiter(rate.Inf, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	f.r = &AccountSyncReconciler{Client: f.c, Recorder: events.NewFakeRecorder(1000), Smartlead: staticProvider{sc}}
	return f
}

// sync runs one sync and returns the writes it made and the stand-in calls.
func (f *syncFleet) sync(tb testing.TB) (writes int64, calls int) {
	tb.Helper()
	f.writes.Store(0)
	f.sl.ResetCalls()
	f.now = f.now.Add(time.Hour) // past the interval: due
	if _, err := f.r.sync(context.Background(), f.policy(tb), f.now); err != nil {
		tb.Fatal(err)
	}
	return f.writes.Load(), len(f.sl.Calls())
}

func (f *syncFleet) policy(tb testing.TB) *bgv1.ProtectionPolicy {
	var p bgv1.ProtectionPolicy
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "fleet", Name: "default"}, &p); err != nil {
		tb.Fatal(err)
	}
	return &p
}

// A fleet syncs in pages of 100 and writes only what changed: the first sync records every
// account and creates the missing Mailboxes, the second records the new ones, a quiet sync writes
// nothing, and a person's edit of two accounts costs two writes. (1,000 accounts here, to keep make test
// quick; BenchmarkAccountSync runs 10,000.)
func TestSyncWritesOnlyWhatChanged(t *testing.T) {
	f := newSyncFleet(t, 1000, 10)
	steps := []struct {
		name   string
		before func()
		writes int64
	}{
		{"first sync: 990 accounts recorded, 10 Mailboxes created", nil, 1000},
		{"second sync: the 10 new Mailboxes' accounts recorded", nil, 10},
		{"a quiet sync", nil, 0},
		{"a person suspends one account and lowers another's limit", func() {
			f.sl.EditAccount(f.ids[17], func(a *standin.Account) { a.Suspended = true })
			f.sl.EditAccount(f.ids[998], func(a *standin.Account) { a.MessagePerDay = 20 })
		}, 2},
		{"a quiet sync again", nil, 0},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		start := time.Now()
		writes, calls := f.sync(t)
		t.Logf("%s: %d writes, %d calls, %s", s.name, writes, calls, time.Since(start).Round(time.Millisecond))
		if writes != s.writes || calls != 11 { // 10 full pages, then an empty one
			t.Fatalf("%s: %d writes and %d calls, want %d writes and 11 calls", s.name, writes, calls, s.writes)
		}
	}
	var mb bgv1.Mailbox
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "fleet", Name: "box00017"}, &mb); err != nil {
		t.Fatal(err)
	}
	if a := mb.Status.Account; a == nil || a.ID != f.ids[17] || !a.Suspended || a.DailyLimit != 40 {
		t.Fatalf("box00017's account: %+v", a)
	}
	var created bgv1.Mailbox
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "fleet", Name: "box00995-domain195-com"}, &created); err != nil {
		t.Fatal(err)
	}
	if created.Labels[bgv1.LabelManagedBy] != bgv1.ManagedByValue || ptr.Deref(created.Spec.SmartleadAccountID, 0) != f.ids[995] {
		t.Fatalf("a created Mailbox: %+v", created.ObjectMeta)
	}
}

// The policy's status records each sync; a failed one keeps the last good time and says why, without
// the key; the next reconcile comes back within a minute.
func TestSyncRecordsItselfOnThePolicy(t *testing.T) {
	f := newSyncFleet(t, 3, 0)
	f.r.Clock = clockAt(f.now)
	res, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "fleet", Name: "default"}})
	if err != nil || res.RequeueAfter != DefaultSyncInterval {
		t.Fatalf("result %+v, %v", res, err)
	}
	p := f.policy(t)
	if p.Status.LastSyncTime == nil || !p.Status.LastSyncTime.Time.Equal(f.now) || p.Status.Accounts != 3 || p.Status.LastSyncError != "" {
		t.Fatalf("status after a sync: %+v", p.Status)
	}
	// Not due again: it only comes back when the interval is over.
	res, _ = f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	if res.RequeueAfter != DefaultSyncInterval || len(f.sl.Calls()) != 1 {
		t.Fatalf("a sync that is not due: %+v, %d calls", res, len(f.sl.Calls()))
	}
	f.sl.Inject(standin.Fault{Code: 401, Count: 1})
	f.r.Clock = clockAt(f.now.Add(DefaultSyncInterval))
	res, err = f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
	if err != nil || res.RequeueAfter != syncRetry {
		t.Fatalf("a failed sync: %+v, %v", res, err)
	}
	p = f.policy(t)
	if !p.Status.LastSyncTime.Time.Equal(f.now) || p.Status.LastSyncError == "" || p.Status.Accounts != 3 {
		t.Fatalf("status after a failed sync: %+v", p.Status)
	}
}

// BenchmarkAccountSync times one sync of 10,000 accounts against the stand-in (101 list calls): a quiet
// one (no write), and, as the baseline of the same run, one where every account changed (10,000 writes).
func BenchmarkAccountSync(b *testing.B) {
	f := newSyncFleet(b, 10000, 0)
	f.sync(b)
	b.Run("quiet", func(b *testing.B) {
		for b.Loop() {
			if w, _ := f.sync(b); w != 0 {
				b.Fatalf("%d writes", w)
			}
		}
	})
	b.Run("every-account-changed", func(b *testing.B) {
		limit := int32(41)
		for b.Loop() {
			b.StopTimer()
			for _, id := range f.ids {
				f.sl.EditAccount(id, func(a *standin.Account) { a.MessagePerDay = limit })
			}
			limit++
			b.StartTimer()
			if w, _ := f.sync(b); w != 10000 {
				b.Fatalf("%d writes", w)
			}
		}
	})
}

func clockAt(t time.Time) *clocktesting.FakePassiveClock { return clocktesting.NewFakePassiveClock(t) }

// A Mailbox created a moment ago, not yet in the cache, gets no twin: before creating, the sync lists the
// namespace's Mailboxes from the API server.
func TestSyncMakesNoTwinOfAMailboxTheCacheHasNotSeen(t *testing.T) {
	f := newSyncFleet(t, 3, 1) // box00002's account has no Mailbox in the cache
	fresh := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "made-by-a-person", Namespace: "fleet"},
		Spec: bgv1.MailboxSpec{Email: "box00002@domain002.com"}}
	api := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(fresh).Build()
	f.r.APIReader = api
	if writes, _ := f.sync(t); writes != 2 { // the two cached Mailboxes' accounts, no creation
		t.Fatalf("%d writes", writes)
	}
	var list bgv1.MailboxList
	if err := f.c.List(context.Background(), &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("%d Mailboxes (%v): a twin was created", len(list.Items), err)
	}
	f.r.APIReader = nil // the cache alone: it is created
	if writes, _ := f.sync(t); writes != 1 {
		t.Fatalf("%d writes without the API server's view", writes)
	}
}
