package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// DomainReconciler keeps a Domain's status.
type DomainReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=domains,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=bounceguard.io,resources=domains/status,verbs=get;update;patch

// Reconcile implements reconcile.Reconciler.
func (r *DomainReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	var d bgv1.Domain
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := d.DeepCopy()
	defer func() {
		if perr := patchStatus(ctx, r.Client, before, &d); perr != nil && err == nil {
			err = perr
		}
	}()
	d.Status.ObservedGeneration = d.Generation
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler.
func (r *DomainReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&bgv1.Domain{}).Named("domain").Complete(r)
}
