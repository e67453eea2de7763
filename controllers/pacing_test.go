package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// A write that changes only conditions waits for the pacing limiter; a write that records a decision (a
// health transition) never does. The limiter here has no token left for an hour.
func TestConditionWritesArePacedDecisionsAreNot(t *testing.T) {
	ctx := context.Background()
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns", Generation: 1},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeObserve}}
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "ns", Generation: 1},
		Spec: bgv1.MailboxSpec{Email: "ann@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
	for i := range 100 {
		tally.Apply(&mb.Status, tally.Event{ID: fmt.Sprintf("<send-%d@mail.example>", i), Kind: tally.Send, At: time.Now()}, false)
	}
	b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, mb).
		WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{}, &bgv1.Domain{})
	for _, ix := range index.Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	c := b.Build()
	r := &MailboxReconciler{Client: c, Recorder: events.NewFakeRecorder(100)}
	key := client.ObjectKeyFromObject(mb)
	reconcile := func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key})
		return err
	}
	get := func() *bgv1.Mailbox {
		var got bgv1.Mailbox
		if err := c.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	if err := reconcile(); err != nil { // unpaced: the first reconcile writes health and conditions
		t.Fatal(err)
	}
	if got := get(); got.Status.Health != bgv1.HealthHealthy {
		t.Fatalf("health %q after the first reconcile", got.Status.Health)
	}

	r.ConditionWrites = rate.NewLimiter(rate.Every(time.Hour), 1)
	r.ConditionWrites.Allow() // the only token is gone

	// The policy turns Suggest: every mailbox gains a PauseRecommended=False condition, and nothing else.
	policy.Spec.Mode = bgv1.ModeSuggest
	if err := c.Update(ctx, policy); err != nil {
		t.Fatal(err)
	}
	if err := reconcile(); err == nil {
		t.Fatal("a conditions-only write went ahead without a token")
	}
	if cond := apimeta.FindStatusCondition(get().Status.Conditions, bgv1.ConditionPauseRecommended); cond != nil {
		t.Fatalf("written without a token: %+v", cond)
	}

	// Five bounces in the window: the transition to Paused is written at once, limiter or not.
	cur := get()
	for i := range 5 {
		tally.Apply(&cur.Status, tally.Event{ID: fmt.Sprintf("<bounce-%d@mail.example>", i), Kind: tally.Bounce, At: time.Now()}, false)
	}
	tally.Refresh(&cur.Status, 100)
	if err := c.Status().Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if err := reconcile(); err != nil {
		t.Fatalf("a health transition was held back: %v", err)
	}
	got := get()
	if got.Status.Health != bgv1.HealthPaused {
		t.Fatalf("health %q after 5 bounces in 100 sends", got.Status.Health)
	}
	if cond := apimeta.FindStatusCondition(got.Status.Conditions, bgv1.ConditionPauseRecommended); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("PauseRecommended %+v with the transition", cond)
	}
}

// conditionsOnly tells a write that decides nothing from one that records something.
func TestConditionsOnly(t *testing.T) {
	base := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: bgv1.MailboxStatus{ObservedGeneration: 1,
		Health: bgv1.HealthHealthy, Sent: 40, Conditions: []metav1.Condition{{Type: bgv1.ConditionReady, Status: metav1.ConditionTrue}}}}
	for _, tc := range []struct {
		name   string
		change func(*bgv1.Mailbox)
		want   bool
	}{
		{"nothing", func(*bgv1.Mailbox) {}, true},
		{"a condition's message", func(m *bgv1.Mailbox) { m.Status.Conditions[0].Message = "governed by ProtectionPolicy x" }, true},
		{"a condition added", func(m *bgv1.Mailbox) {
			m.Status.Conditions = append(m.Status.Conditions, metav1.Condition{Type: bgv1.ConditionPauseRecommended})
		}, true},
		{"the generation observed", func(m *bgv1.Mailbox) { m.Status.ObservedGeneration = 2 }, true},
		{"health", func(m *bgv1.Mailbox) { m.Status.Health = bgv1.HealthWarning }, false},
		{"health message", func(m *bgv1.Mailbox) { m.Status.HealthMessage = "3 bounces" }, false},
		{"the window", func(m *bgv1.Mailbox) { m.Status.Ledger.WindowStartSent = 40 }, false},
		{"the Smartlead record", func(m *bgv1.Mailbox) { m.Status.Smartlead.Paused = true }, false},
		{"a resume request", func(m *bgv1.Mailbox) { m.Status.ResumeRequest = "now" }, false},
	} {
		after := base.DeepCopy()
		tc.change(after)
		if got := conditionsOnly(base, after); got != tc.want {
			t.Errorf("%s: conditionsOnly = %v, want %v", tc.name, got, tc.want)
		}
	}
}
