package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/secretstore"
)

// ProtectionPolicyReconciler keeps a policy's status: Ready (its Secrets are usable) and mailbox counts by health.
type ProtectionPolicyReconciler struct {
	client.Client
	// Shard restricts the reconciler to the namespaces of its shard; nil: every namespace.
	Shard *Shard
	// Recorder emits Kubernetes Events.
	Recorder recorder.EventRecorder
	// Fleet counts the policies' mailboxes from the informer; nil or not yet synced: they are listed.
	Fleet *Fleet
	// Secrets holds the referenced Secrets (fed by a watch of their metadata); SetupWithManager needs it.
	Secrets *secretstore.Store
	// Notifier delivers the policy's notifications; its delivery status is written to the policy's status
	// (it calls NotificationStatusChanged). nil: none.
	Notifier Notifier

	secretChanges queueSource
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=protectionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=bounceguard.io,resources=protectionpolicies/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile implements reconcile.Reconciler.
func (r *ProtectionPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	if !r.Shard.Contains(ctx, req.Namespace) {
		return ctrl.Result{}, nil // another shard's
	}
	var policy bgv1.ProtectionPolicy
	if err := r.Get(ctx, req.NamespacedName, &policy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := policy.DeepCopy()
	defer func() {
		if perr := patchOwnedStatus(ctx, r.Client, before, &policy, before.Status.ObservedGeneration == 0, policy.Status); perr != nil && err == nil {
			err = perr
		}
	}()

	view, err := viewOf(ctx, r.Client, r.Fleet, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("counting the policy's mailboxes: %w", err)
	}
	counts := view.Counts(req.NamespacedName)
	st := &policy.Status
	st.Mailboxes, st.Healthy, st.Warning, st.Paused, st.Recovering, st.PausedMailboxes =
		counts.Mailboxes, counts.Healthy, counts.Warning, counts.Paused, counts.Recovering, counts.PausedInSmartlead
	held, heldMessage := counts.SafetyHeld, counts.HeldMessage

	ready := metav1.Condition{Type: bgv1.ConditionReady, Status: metav1.ConditionTrue, Reason: bgv1.ReasonReady,
		Message: "policy is ready", ObservedGeneration: policy.Generation}
	for _, ref := range policy.SecretRefs() {
		reason, msg, err := r.checkSecretKey(ctx, policy.Namespace, ref.What, ref.Selector)
		if err != nil {
			return ctrl.Result{}, err
		}
		if reason != "" {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reason, msg
			break
		}
	}
	st.Notifications = notifierOr(r.Notifier).Status(&policy)
	if policy.Spec.Mode == bgv1.ModeEnforce && policy.Spec.Smartlead.WebhookSecretRef == nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, bgv1.ReasonWebhookSecretRequired
		ready.Message = "Enforce without smartlead.webhookSecretRef: unauthenticated webhooks must never pause a mailbox; " +
			"nothing is done in Smartlead until the policy has a webhook secret"
	}
	meta.SetStatusCondition(&st.Conditions, ready)
	for health, n := range map[bgv1.Health]int32{bgv1.HealthHealthy: st.Healthy, bgv1.HealthWarning: st.Warning,
		bgv1.HealthPaused: st.Paused, bgv1.HealthRecovering: st.Recovering} {
		mailboxesByHealth.WithLabelValues(policy.Namespace, policy.Name, string(health)).Set(float64(n))
	}

	// The safety short-circuit: mailboxes report a pause held back by the limit; the policy says so once.
	if held > 0 {
		msg := fmt.Sprintf("%d mailbox(es) not paused in Smartlead: %s. Find the cause (a broken payload format, a "+
			"Smartlead incident, a real problem) and resume, or raise spec.safety.maxPausedPercent", held, heldMessage)
		if conditionStatus(st.Conditions, bgv1.ConditionPausingAllowed) != metav1.ConditionFalse {
			r.Recorder.Eventf(&policy, nil, corev1.EventTypeWarning, bgv1.ReasonSafetyLimit, "Pause", "%s", msg)
		}
		setCondition(&st.Conditions, policy.Generation, bgv1.ConditionPausingAllowed, false, bgv1.ReasonSafetyLimit, msg)
	} else {
		setCondition(&st.Conditions, policy.Generation, bgv1.ConditionPausingAllowed, true, bgv1.ReasonWithinLimit,
			fmt.Sprintf("at most %d%% of the policy's mailboxes may be paused at once (from %d mailboxes)",
				protection.RulesFor(&policy).MaxPausedPercent, protection.RulesFor(&policy).SafetyMinimum))
	}
	st.ObservedGeneration = policy.Generation
	return ctrl.Result{}, nil
}

// checkSecretKey reports why a referenced Secret key is unusable, or "" when it is usable. The
// message names the Secret and key, never the value.
func (r *ProtectionPolicyReconciler) checkSecretKey(ctx context.Context, ns, what string,
	sel *bgv1.SecretKeySelector) (reason, message string, err error) {
	var secret corev1.Secret
	var secrets client.Reader = r.Client
	if r.Secrets != nil {
		secrets = r.Secrets
	}
	if err := secrets.Get(ctx, types.NamespacedName{Namespace: ns, Name: sel.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return bgv1.ReasonSecretNotFound, fmt.Sprintf("Secret %q for the %s not found", sel.Name, what), nil
		}
		return "", "", fmt.Errorf("reading Secret %q: %w", sel.Name, err)
	}
	if len(secret.Data[sel.Key]) == 0 {
		return bgv1.ReasonSecretKeyMissing, fmt.Sprintf("Secret %q has no key %q for the %s", sel.Name, sel.Key, what), nil
	}
	return "", "", nil
}

// SetupWithManager registers the reconciler; it also runs when a referenced Secret or a governed Mailbox changes.
func (r *ProtectionPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Fleet == nil {
		fleet, err := NewFleet(mgr)
		if err != nil {
			return err
		}
		r.Fleet = fleet
	}
	if r.Secrets == nil {
		return fmt.Errorf("the ProtectionPolicy controller needs a Secret store (Secrets)")
	}
	// A changed Secret reconciles the policies that reference it, once the store has dropped its old data.
	r.Secrets.Subscribe(func(key types.NamespacedName) {
		r.secretChanges.Add(r.policiesForSecret(context.Background(), &metav1.PartialObjectMetadata{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})...)
	})
	return r.Shard.watchNamespaces(ctrl.NewControllerManagedBy(mgr), r.Client, &bgv1.ProtectionPolicyList{}).
		For(&bgv1.ProtectionPolicy{}).
		WatchesRawSource(r.secretChanges.Source()).
		// The fleet requests a reconcile when a policy's counts change (after counting, so never early).
		WatchesRawSource(r.Fleet.Source()).
		Named("protectionpolicy").
		Complete(r)
}

// NotificationStatusChanged requests a reconcile of the policy, whose notifications' delivery status
// changed: the outcome is written to the policy's status. The Notifier calls it.
func (r *ProtectionPolicyReconciler) NotificationStatusChanged(policy types.NamespacedName) {
	r.secretChanges.Add(reconcile.Request{NamespacedName: policy})
}

func (r *ProtectionPolicyReconciler) policiesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return requestsFor(ctx, r.Client, &bgv1.ProtectionPolicyList{}, index.PolicySecret, o)
}

// pausedInSmartlead reports whether a mailbox is paused in Smartlead: its Paused condition is True. It is
// what every PAUSED column counts (policies, domains and mailboxes alike).
func pausedInSmartlead(mb *bgv1.Mailbox) bool {
	return conditionStatus(mb.Status.Conditions, bgv1.ConditionPaused) == metav1.ConditionTrue
}

func conditionReason(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return c.Reason
	}
	return ""
}
