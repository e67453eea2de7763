package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/trust"
)

// DomainReconciler aggregates a Domain's mailboxes, runs the domain state machine and, by its health,
// drives the cascade: the Mailbox reconciler pauses every mailbox of a Paused domain in Enforce mode.
type DomainReconciler struct {
	client.Client
	// Shard restricts the reconciler to the namespaces of its shard; nil: every namespace.
	Shard *Shard
	// Recorder emits Kubernetes Events.
	Recorder recorder.EventRecorder
	// Clock is the time source; default the real clock.
	Clock clock.PassiveClock
	// Notifier announces a domain's pause to the policy's notification targets; nil: none.
	Notifier Notifier
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=domains,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=bounceguard.io,resources=domains/status,verbs=patch

// Reconcile implements reconcile.Reconciler.
func (r *DomainReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, err error) {
	if !r.Shard.Contains(ctx, req.Namespace) {
		return ctrl.Result{}, nil // another shard's
	}
	var d bgv1.Domain
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		if apierrors.IsNotFound(err) {
			setDomainHealth(req.Namespace, req.Name, "")
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var mailboxes bgv1.MailboxList
	if err := r.List(ctx, &mailboxes, client.InNamespace(d.Namespace), client.MatchingFields{index.MailboxDomain: d.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the domain's mailboxes: %w", err)
	}
	if len(mailboxes.Items) == 0 && d.Labels[bgv1.LabelManagedBy] == bgv1.ManagedByValue && d.DeletionTimestamp == nil {
		// bounceguard created it for its mailboxes and none is left. One a person created is never deleted.
		err := r.Delete(ctx, &d, client.Preconditions{UID: &d.UID, ResourceVersion: &d.ResourceVersion})
		return ctrl.Result{}, client.IgnoreNotFound(ignoreConflict(err))
	}

	before := d.DeepCopy()
	var transition func() // the transition's Event, recorded once its state is written
	defer func() {
		perr := patchOwnedStatus(ctx, r.Client, before, &d, before.Status.ObservedGeneration == 0, d.Status)
		switch {
		case perr == nil && transition != nil:
			transition()
		case perr != nil && err == nil:
			err = perr
		}
	}()
	st := &d.Status
	st.ObservedGeneration = d.Generation
	var policy bgv1.ProtectionPolicy
	policyName := d.PolicyName()
	perr := r.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: policyName}, &policy)
	if perr != nil && !apierrors.IsNotFound(perr) {
		return ctrl.Result{}, fmt.Errorf("reading the domain's policy: %w", perr)
	}
	signed := perr == nil && policy.Spec.Smartlead.WebhookSecretRef != nil
	st.Mailboxes, st.UnhealthyMailboxes, st.PausedMailboxes = 0, 0, 0
	unsigned := map[string]bool{} // by policy name: whether it takes unauthenticated webhooks (or is missing)
	for i := range mailboxes.Items {
		mb := &mailboxes.Items[i]
		if signed {
			skip, err := r.unsignedPolicy(ctx, mb, unsigned)
			if err != nil {
				return ctrl.Result{}, fmt.Errorf("reading a mailbox's policy: %w", err)
			}
			if skip {
				continue
			}
		}
		st.Mailboxes++
		if protection.Unhealthy(mb.Status.Health) {
			st.UnhealthyMailboxes++
		}
		if pausedInSmartlead(mb) {
			st.PausedMailboxes++
		}
	}
	st.UnhealthyPercent = protection.Percent(st.UnhealthyMailboxes, st.Mailboxes)

	if perr != nil {
		setReady(&st.Conditions, d.Generation, bgv1.ReasonPolicyNotFound,
			fmt.Sprintf("ProtectionPolicy %q not found in namespace %q", policyName, d.Namespace))
		return ctrl.Result{}, nil
	}
	rules := protection.RulesFor(&policy)
	dec := protection.DecideDomain(rules, st, st.Mailboxes, st.UnhealthyMailboxes, d.Annotations[bgv1.AnnotationResume], clockNow(r.Clock))
	dec.Apply(st)
	if dec.Transition != nil {
		transition = func() {
			transitionEvent(r.Recorder, &d, rules.Mode, dec.Transition)
			if dec.Transition.To == bgv1.HealthPaused {
				notifierOr(r.Notifier).Notify(&policy, bgv1.Notice{Event: bgv1.NotifyDomainPaused, Domain: d.Name,
					Evidence: dec.Transition.Message + modeNote(rules.Mode)})
			}
		}
	} else if st.HealthReason == "" {
		_, msg := protection.DomainLevel(rules, st.Mailboxes, st.UnhealthyMailboxes)
		st.HealthReason, st.HealthMessage = bgv1.ReasonHealthy, msg
	}
	setDomainConditions(&d, rules)
	setDomainHealth(d.Namespace, d.Name, st.Health)
	return ctrl.Result{RequeueAfter: dec.RequeueAfter}, nil
}

// unsignedPolicy reports whether a mailbox's own policy accepts webhooks without a secret, or is missing
// (memo holds the answers by policy name). The Domain of a policy that authenticates its webhooks does not
// count such mailboxes: anyone who knows that policy's organization id can have the receiver discover
// Mailboxes under it and bounce them, and a cascade from them would pause the signed policy's mailboxes
// on unauthenticated requests (or healthy ones would dilute the domain's share of unhealthy mailboxes).
func (r *DomainReconciler) unsignedPolicy(ctx context.Context, mb *bgv1.Mailbox, memo map[string]bool) (bool, error) {
	name := mb.PolicyName()
	if v, ok := memo[name]; ok {
		return v, nil
	}
	signed, err := trust.PolicyAuthenticates(ctx, r.Client, mb.Namespace, name)
	if err != nil {
		return false, err
	}
	memo[name] = !signed
	return !signed, nil
}

// modeNote says, in a notification, that a mode does not act on a transition in Smartlead.
func modeNote(mode bgv1.Mode) string {
	if mode == bgv1.ModeEnforce {
		return ""
	}
	return " (mode " + string(mode) + ": nothing is paused in Smartlead)"
}

// setDomainConditions writes Warning, Paused, PauseRecommended and Ready. Paused is True only in Enforce,
// where the mailboxes are actually paused; its message carries the evidence of the transition.
func setDomainConditions(d *bgv1.Domain, rules protection.Rules) {
	st, gen, conds := &d.Status, d.Generation, &d.Status.Conditions
	if st.Health == bgv1.HealthWarning {
		setCondition(conds, gen, bgv1.ConditionWarning, true, st.HealthReason, st.HealthMessage)
	} else {
		setCondition(conds, gen, bgv1.ConditionWarning, false, bgv1.ReasonNotWarning, "health is "+string(st.Health))
	}
	paused := st.Health == bgv1.HealthPaused
	evidence := st.HealthMessage
	if st.ResumeAt != nil {
		evidence += "; cooldown until " + st.ResumeAt.UTC().Format(time.RFC3339)
	}
	switch {
	case paused && rules.Mode == bgv1.ModeEnforce && st.PausedMailboxes > 0:
		setCondition(conds, gen, bgv1.ConditionPaused, true, bgv1.ReasonDomainThreshold,
			fmt.Sprintf("%s; %d of %d mailboxes paused in Smartlead", evidence, st.PausedMailboxes, st.Mailboxes))
	case paused && rules.Mode == bgv1.ModeEnforce:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonNotPausedInSmartlead,
			"none of the domain's mailboxes is paused in Smartlead (the safety limit, a missing API key or a failing "+
				"Smartlead call; each Mailbox's Paused condition says which): "+evidence)
	case paused:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonNotEnforced,
			fmt.Sprintf("mode is %s, so Smartlead is not called; Enforce would pause the domain: %s", rules.Mode, evidence))
	default:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonSending, "sending is not paused")
	}
	if rules.Mode == bgv1.ModeSuggest {
		if paused {
			setCondition(conds, gen, bgv1.ConditionPauseRecommended, true, bgv1.ReasonDomainThreshold, evidence)
		} else {
			setCondition(conds, gen, bgv1.ConditionPauseRecommended, false, bgv1.ReasonNotRecommended, "health is "+string(st.Health))
		}
	} else {
		meta.RemoveStatusCondition(conds, bgv1.ConditionPauseRecommended)
	}
	setCondition(conds, gen, bgv1.ConditionReady, true, bgv1.ReasonReady, "governed by ProtectionPolicy "+d.PolicyName())
}

// SetupWithManager registers the reconciler. It runs when a mailbox of the domain appears, goes, or
// changes its own health or its pause, and when the domain's policy changes.
func (r *DomainReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.Shard.watchNamespaces(ctrl.NewControllerManagedBy(mgr), r.Client, &bgv1.DomainList{}).
		For(&bgv1.Domain{}).
		Watches(&bgv1.Mailbox{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			mb := o.(*bgv1.Mailbox)
			if mb.Domain() == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: mb.Namespace, Name: mb.Domain()}}}
		}), builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			old, cur := e.ObjectOld.(*bgv1.Mailbox), e.ObjectNew.(*bgv1.Mailbox)
			return old.Status.Health != cur.Status.Health || pausedInSmartlead(old) != pausedInSmartlead(cur)
		}})).
		Watches(&bgv1.ProtectionPolicy{}, handler.EnqueueRequestsFromMapFunc(r.domainsOfPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("domain").
		Complete(r)
}

func (r *DomainReconciler) domainsOfPolicy(ctx context.Context, o client.Object) []reconcile.Request {
	return requestsFor(ctx, r.Client, &bgv1.DomainList{}, index.DomainPolicy, o)
}

// ensureDomain returns the health and evidence of a mailbox's Domain, creating the Domain (labelled as
// bounceguard's own, governed by the namespace's "default" policy, so Healthy for now) when there is none.
// A mailbox of a policy with a webhook secret does not follow a Domain whose policy has none
// (trust.FollowsDomain): nothing is returned for it.
func ensureDomain(ctx context.Context, c client.Client, mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy) (bgv1.Health, string, error) {
	name := mb.Domain()
	if name == "" {
		return "", "", nil
	}
	var d bgv1.Domain
	err := c.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: name}, &d)
	if err == nil {
		follows, err := trust.FollowsDomain(ctx, c, policy, &d)
		if err != nil || !follows {
			return "", "", err
		}
	}
	if !apierrors.IsNotFound(err) {
		return d.Status.Health, d.Status.HealthMessage, err
	}
	d = bgv1.Domain{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: mb.Namespace,
			Labels: map[string]string{bgv1.LabelManagedBy: bgv1.ManagedByValue}},
		Spec: bgv1.DomainSpec{PolicyRef: bgv1.LocalPolicyReference{Name: bgv1.DefaultPolicyName}},
	}
	if err := c.Create(ctx, &d); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", "", fmt.Errorf("creating Domain %q: %w", name, err)
	}
	return "", "", nil
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}
