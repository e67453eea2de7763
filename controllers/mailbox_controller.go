package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Reasons of the Mailbox and Domain Ready condition.
const (
	ReasonPolicyNotFound = "PolicyNotFound"
)

// MailboxReconciler keeps a Mailbox's protection state.
type MailboxReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes/status,verbs=get;update;patch

// Reconcile implements reconcile.Reconciler.
func (r *MailboxReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	var mb bgv1.Mailbox
	if err := r.Get(ctx, req.NamespacedName, &mb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := mb.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, before, &mb); perr != nil && err == nil {
			err = perr
		}
	}()

	ready := metav1.Condition{Type: bgv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonReady,
		Message: "governed by ProtectionPolicy " + PolicyNameOf(&mb), ObservedGeneration: mb.Generation}
	var policy bgv1.ProtectionPolicy
	if err := r.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: PolicyNameOf(&mb)}, &policy); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading the mailbox's policy: %w", err)
		}
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonPolicyNotFound
		ready.Message = fmt.Sprintf("ProtectionPolicy %q not found in namespace %q", PolicyNameOf(&mb), mb.Namespace)
	}
	meta.SetStatusCondition(&mb.Status.Conditions, ready)
	mb.Status.ObservedGeneration = mb.Generation
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler; it also runs for every Mailbox of a policy that changes.
func (r *MailboxReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&bgv1.Mailbox{}).
		Watches(&bgv1.ProtectionPolicy{}, handler.EnqueueRequestsFromMapFunc(r.mailboxesForPolicy)).
		Named("mailbox").
		Complete(r)
}

func (r *MailboxReconciler) mailboxesForPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	var list bgv1.MailboxList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{IndexMailboxPolicy: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
