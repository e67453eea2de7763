package controllers

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// A policy change that maps to a thousand mailboxes queues them behind a mailbox that a receiver write
// brings afterwards, and that write raises one of the thousand that was already queued.
func TestPolicyFanOutWaitsBehindReceiverWrites(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	fanOut := lowPriority(handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		reqs := make([]reconcile.Request, 1000)
		for i := range reqs {
			reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("m%d", i)}}
		}
		return reqs
	}))
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns", ResourceVersion: "1"}}
	changed := policy.DeepCopy()
	changed.ResourceVersion, changed.Generation = "2", 2
	fanOut.Update(context.Background(), event.UpdateEvent{ObjectOld: policy, ObjectNew: changed}, q)

	// The receiver's writes: one to a mailbox outside the fan-out, one to m500, already queued low.
	written := func(name string) {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "1"}}
		after := mb.DeepCopy()
		after.ResourceVersion = "2"
		(&handler.EnqueueRequestForObject{}).Update(context.Background(), event.UpdateEvent{ObjectOld: mb, ObjectNew: after}, q)
	}
	written("crossing")
	written("m500")
	for _, want := range []string{"crossing", "m500"} {
		got, _ := q.Get()
		if got.Name != want {
			t.Fatalf("got %s first, want %s: the fan-out is in front of a receiver write", got.Name, want)
		}
		q.Done(got)
	}
	if n := q.Len(); n != 999 {
		t.Fatalf("%d left, want the other 999 of the fan-out", n)
	}
}

// Which of a Mailbox's own changes are queued at normal priority: a bounce the receiver recorded, a
// Smartlead outcome, its spec, annotations, finalizers and deletion; not sends, nor the reconciler's own writes.
func TestUrgentChange(t *testing.T) {
	base := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", Generation: 1},
		Status: bgv1.MailboxStatus{Sent: 10, Health: bgv1.HealthHealthy}}
	now := metav1.Now()
	for _, tc := range []struct {
		name   string
		change func(*bgv1.Mailbox)
		urgent bool
	}{
		{"conditions only (the reconciler's write)", func(m *bgv1.Mailbox) {
			m.Status.Conditions = []metav1.Condition{{Type: bgv1.ConditionReady, Status: metav1.ConditionTrue, Message: "mode Suggest"}}
		}, false},
		{"health the reconciler set", func(m *bgv1.Mailbox) { m.Status.Health, m.Status.ObservedGeneration = bgv1.HealthWarning, 1 }, false},
		{"a send recorded (it can only dilute the window)", func(m *bgv1.Mailbox) { m.Status.Sent++; m.Status.WindowSends++ }, false},
		{"a bounce recorded", func(m *bgv1.Mailbox) { m.Status.Bounced++ }, true},
		{"a soft bounce recorded", func(m *bgv1.Mailbox) { m.Status.SoftBounced++ }, true},
		{"an event's time", func(m *bgv1.Mailbox) { m.Status.LastEventAt = &now }, false},
		{"a Smartlead outcome", func(m *bgv1.Mailbox) { m.Status.Smartlead.Suspended = true }, true},
		{"the spec", func(m *bgv1.Mailbox) { m.Generation++ }, true},
		{"a resume annotation", func(m *bgv1.Mailbox) { m.Annotations = map[string]string{bgv1.AnnotationResume: "1"} }, true},
		{"a finalizer", func(m *bgv1.Mailbox) { m.Finalizers = []string{"x"} }, true},
		{"deletion", func(m *bgv1.Mailbox) { m.DeletionTimestamp = &now }, true},
	} {
		cur := base.DeepCopy()
		tc.change(cur)
		if got := urgentChange(base, cur); got != tc.urgent {
			t.Errorf("%s: urgent = %v, want %v", tc.name, got, tc.urgent)
		}
	}
}

// Which of a Mailbox's updates queue no reconcile at all: the reconciler's own description of a state it
// has acted on. A health change, a window restart, a send and anything urgent still do.
func TestDescriptionOnly(t *testing.T) {
	base := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", Generation: 1, ResourceVersion: "5"},
		Status: bgv1.MailboxStatus{Sent: 10, Health: bgv1.HealthHealthy}}
	for _, tc := range []struct {
		name   string
		change func(*bgv1.Mailbox)
		skip   bool
	}{
		{"conditions", func(m *bgv1.Mailbox) {
			m.Status.Conditions = []metav1.Condition{{Type: bgv1.ConditionReady, Status: metav1.ConditionTrue}}
		}, true},
		{"health reason and message, generation observed", func(m *bgv1.Mailbox) {
			m.Status.HealthReason, m.Status.HealthMessage, m.Status.ObservedGeneration = "Healthy", "0 bounces", 1
		}, true},
		{"health", func(m *bgv1.Mailbox) { m.Status.Health = bgv1.HealthRecovering }, false},
		{"a window restart", func(m *bgv1.Mailbox) { m.Status.Ledger.WindowStartSent = 10 }, false},
		{"a send", func(m *bgv1.Mailbox) { m.Status.Sent++ }, false},
		{"a bounce", func(m *bgv1.Mailbox) { m.Status.Bounced++ }, false},
		{"a Smartlead outcome", func(m *bgv1.Mailbox) { m.Status.Smartlead.Paused = true }, false},
		{"an annotation", func(m *bgv1.Mailbox) { m.Annotations = map[string]string{bgv1.AnnotationResume: "now"} }, false},
	} {
		cur := base.DeepCopy()
		tc.change(cur)
		if got := descriptionOnly(base, cur); got != tc.skip {
			t.Errorf("%s: descriptionOnly = %v, want %v", tc.name, got, tc.skip)
		}
	}
}
