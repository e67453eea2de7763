package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// holdRecheck is how often a mailbox whose pause is held back (safety limit, missing API key) is looked at again.
const holdRecheck = 30 * time.Second

// MailboxReconciler keeps a Mailbox's health (the state machine of internal/protection) and, in Enforce mode,
// its pause in Smartlead.
type MailboxReconciler struct {
	client.Client
	// Shard restricts the reconciler to the namespaces of its shard; nil: every namespace.
	Shard *Shard
	// Recorder emits Kubernetes Events.
	Recorder recorder.EventRecorder
	// Clock is the time source; default the real clock.
	Clock clock.PassiveClock
	// Smartlead returns the Smartlead client of a policy.
	Smartlead SmartleadProvider
	// APIReader reads from the API server directly (finalizer updates); default: the client.
	APIReader client.Reader
	// Queues run the Smartlead calls off the reconcile path, per API key; nil: calls are made at once.
	Queues *SmartleadQueues
	// Fleet counts the policies' mailboxes for the safety limit; nil or not yet synced: they are listed.
	Fleet *Fleet
	// Notifier announces transitions to the policies' notification targets; nil: none.
	Notifier Notifier
	// ConditionWrites paces the status writes that change nothing but conditions (a policy's mode or
	// rules changing under a whole fleet), so that they leave the API server room for the writes that
	// decide something; nil: unpaced.
	ConditionWrites *rate.Limiter

	mu sync.Mutex
	// pausedRecently holds the mailboxes this reconciler paused in Smartlead, so that the safety limit
	// counts them before the cache shows it.
	pausedRecently map[types.NamespacedName]bool
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes/status,verbs=update;patch
// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes/finalizers,verbs=update
// +kubebuilder:rbac:groups=bounceguard.io,resources=domains,verbs=get;list;watch;create

// Reconcile implements reconcile.Reconciler: it reads the Mailbox, lets it go when it is being deleted
// (finalize), else decides its state (reconcile), and in every case ends with commit, which writes the
// status and, once that write has landed, runs what the decision asks for.
func (r *MailboxReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	if !r.Shard.Contains(ctx, req.Namespace) {
		return ctrl.Result{}, nil // another shard's
	}
	var mb bgv1.Mailbox
	if err := r.Get(ctx, req.NamespacedName, &mb); err != nil {
		if apierrors.IsNotFound(err) {
			r.notePaused(req.NamespacedName, false)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := mb.DeepCopy()
	var out mailboxOutcome
	defer func() { result, err = r.commit(ctx, before, &mb, out, result, err) }()
	if !mb.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, &mb, clockNow(r.Clock), func(ctx context.Context) error {
			_, err := r.saveSmartlead(ctx, before, &mb)
			return err
		})
	}
	out, err = r.reconcile(ctx, before, &mb)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Only a reconcile that went to the end has seen this generation through.
	mb.Status.ObservedGeneration = mb.Generation
	return ctrl.Result{RequeueAfter: out.requeueAfter}, nil
}

// mailboxOutcome is what one reconcile decided beyond the status it computed: how that status is to be
// written, and what to do once it is written (never before, so that nothing is announced or queued for a
// state that a failed write lost).
type mailboxOutcome struct {
	// transition is the health transition to record (an Event) and announce (a notification); nil: none.
	// policy and mode are those it was decided under.
	transition *protection.Transition
	policy     *bgv1.ProtectionPolicy
	mode       bgv1.Mode
	// restartWindow makes the status write conditional on the resourceVersion read: it starts a fresh
	// rolling window, which resets the receiver's ledger, so it must not overwrite a send recorded meanwhile.
	restartWindow bool
	// queue, when set, asks for the mailbox's Smartlead calls on that API key's queue.
	queue *Credentials
	// findings records and announces the account sync's findings that turned bad; nil: none.
	findings func()
	// requeueAfter is when to look at the mailbox again (a cooldown's end, a held pause's recheck); 0: on change.
	requeueAfter time.Duration
}

// paced reports whether the status write of an outcome may wait for ConditionWrites: it decides nothing
// (no transition, no Smartlead work) and changes nothing of the Mailbox but its conditions.
func (o *mailboxOutcome) paced(before, after *bgv1.Mailbox) bool {
	return o.transition == nil && o.queue == nil && conditionsOnly(before, after)
}

// commit writes a reconcile's status (conditionally when out.restartWindow; after ConditionWrites when it
// only changes conditions) and, once the write has landed, runs out's effects. result and err are the
// reconcile's; a failed write becomes its error unless it had one, and the conflict of a conditional write
// asks for another look shortly instead.
func (r *MailboxReconciler) commit(ctx context.Context, before, mb *bgv1.Mailbox, out mailboxOutcome,
	result ctrl.Result, err error) (ctrl.Result, error) {
	if r.ConditionWrites != nil && out.paced(before, mb) {
		if werr := r.ConditionWrites.Wait(ctx); werr != nil && err == nil {
			return result, werr
		}
	}
	write := patchStatus
	if out.restartWindow {
		write = patchStatusLocked
	}
	perr := write(ctx, r.Client, before, mb)
	switch {
	case perr == nil:
		r.carryOutcome(ctx, mb, out)
	case out.restartWindow && apierrors.IsConflict(perr):
		// The receiver wrote first; decide again on its write (which also wakes this mailbox).
		return ctrl.Result{RequeueAfter: 50 * time.Millisecond}, nil
	case err == nil:
		return result, perr
	}
	return result, err
}

// carryOutcome runs what a reconcile decided, once its status is written: the transition's Event and
// notification, the sync findings' Events and notifications, and the Smartlead work.
func (r *MailboxReconciler) carryOutcome(ctx context.Context, mb *bgv1.Mailbox, out mailboxOutcome) {
	if t := out.transition; t != nil {
		transitionEvent(r.Recorder, mb, out.mode, t)
		r.notifyTransition(out.policy, mb, out.mode, t)
	}
	if out.findings != nil {
		out.findings()
	}
	if out.queue != nil {
		// Queued only now, so that the worker reads the state this reconcile wrote.
		r.queueSmartlead(ctx, *out.queue, client.ObjectKeyFromObject(mb))
	}
}

// reconcile decides a live mailbox's state: its policy, its health (the state machine of
// internal/protection), its conditions and, in Enforce, the Smartlead work it needs. It changes mb's
// status in memory and returns what to do once that status is written; before is the mailbox as read.
// The outcome is returned with an error too: what was decided before the error is still written and
// carried out.
func (r *MailboxReconciler) reconcile(ctx context.Context, before, mb *bgv1.Mailbox) (mailboxOutcome, error) {
	var out mailboxOutcome
	var policy bgv1.ProtectionPolicy
	if err := r.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}, &policy); err != nil {
		if !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("reading the mailbox's policy: %w", err)
		}
		msg := fmt.Sprintf("ProtectionPolicy %q not found in namespace %q", mb.PolicyName(), mb.Namespace)
		if sl := &mb.Status.Smartlead; holdsPause(sl) {
			msg += fmt.Sprintf("; the account (%d) stays paused in Smartlead as it is and no call is made. To resume it, "+
				"restore the policy or point spec.policyRef at an existing one (it is then resumed with the API key "+
				"that paused it), or delete the Mailbox (which resumes it first)", sl.AccountID)
		}
		if conditionReason(mb.Status.Conditions, bgv1.ConditionReady) != bgv1.ReasonPolicyNotFound {
			r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, bgv1.ReasonPolicyNotFound, "Reconcile", "%s", msg)
		}
		setReady(&mb.Status.Conditions, mb.Generation, bgv1.ReasonPolicyNotFound, msg)
		return out, nil
	}
	rules := protection.RulesFor(&policy)
	if reason, msg := r.unusable(ctx, mb, &policy); reason != "" {
		// Keep the Smartlead state as it is and make no call until a person fixes it.
		if conditionReason(mb.Status.Conditions, bgv1.ConditionReady) != reason {
			r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
		}
		setReady(&mb.Status.Conditions, mb.Generation, reason, msg)
		return out, nil
	}
	domainHealth, domainMessage, err := ensureDomain(ctx, r.Client, mb, &policy)
	if err != nil {
		return out, err
	}
	if st := &mb.Status; st.Window == "" {
		tally.Refresh(st, rules.Pause.WithinSends) // a new mailbox shows 0/100 before its first event
	}

	// 1. The state machine: the same in every mode.
	d := protection.DecideMailbox(rules, &mb.Status, mb.Annotations[bgv1.AnnotationResume], mb.Annotations[bgv1.AnnotationHold], clockNow(r.Clock))
	st := &mb.Status
	d.Apply(st, rules.Pause.WithinSends)
	out.transition, out.policy, out.mode = d.Transition, &policy, rules.Mode
	if d.Transition == nil && st.HealthReason == "" {
		st.HealthReason = bgv1.ReasonHealthy
	}
	if d.StartWindow {
		// Recovering starts a fresh rolling window. The write is conditional on the resourceVersion read,
		// so the window starts exactly at the last recorded send; on a conflict the next reconcile decides
		// again. That write wakes the next reconcile, which resumes the mailbox in Smartlead.
		out.restartWindow = true
		setMailboxConditions(mb, rules.Mode, domainHealth, domainMessage, action{})
		out.findings = r.syncFindings(&policy, before, mb)
		return out, nil
	}

	// 2. What the mode does with that state. Smartlead is never called here: the calls run on the API
	// key's own queue (see smartlead_queue.go), so that health, conditions and the gate never wait for them.
	act := r.enforce(ctx, mb, &policy, rules, domainHealth)
	setMailboxConditions(mb, rules.Mode, domainHealth, domainMessage, act)
	out.findings = r.syncFindings(&policy, before, mb)
	out.queue = act.queue
	if act.err != nil {
		return out, act.err
	}
	out.requeueAfter = d.RequeueAfter
	if act.held != "" || act.unavailable != "" {
		out.requeueAfter = minPositive(out.requeueAfter, holdRecheck)
	}
	return out, nil
}

// conditionsOnly reports whether a reconcile changed nothing of a Mailbox but its conditions (and the
// generation they describe): a write that decides nothing.
func conditionsOnly(before, after *bgv1.Mailbox) bool {
	return before.Generation == after.Generation && statusEqualBut(before, after, false)
}

// statusEqualBut reports whether two Mailboxes' statuses are equal but for their conditions and the
// generation observed and, with description, the health reason and message.
func statusEqualBut(x, y *bgv1.Mailbox, description bool) bool {
	a, b := x.Status, y.Status // shallow copies: only the fields below are changed
	a.Conditions, b.Conditions = nil, nil
	a.ObservedGeneration = b.ObservedGeneration
	if description {
		a.HealthReason, a.HealthMessage = b.HealthReason, b.HealthMessage
	}
	return equality.Semantic.DeepEqual(a, b)
}

// unusable says why a mailbox must not be acted on although its policy exists: an Enforce policy without
// a webhook secret (created before the schema rule; unauthenticated events must never pause), or the
// same address under a policy of another namespace that receives the same organization's webhooks as
// strongly (its events are refused with 409 until one goes). "" when it may be acted on.
func (r *MailboxReconciler) unusable(ctx context.Context, mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy) (reason, message string) {
	if policy.Spec.Mode == bgv1.ModeEnforce && policy.Spec.Smartlead.WebhookSecretRef == nil {
		return bgv1.ReasonWebhookSecretRequired, fmt.Sprintf("ProtectionPolicy %q is Enforce without smartlead.webhookSecretRef: "+
			"unauthenticated webhooks must never pause a mailbox, so nothing is done in Smartlead until it has one", policy.Name)
	}
	org := policy.Spec.Smartlead.OrganizationID
	if org == "" {
		return "", ""
	}
	var same bgv1.MailboxList
	if err := r.List(ctx, &same, client.MatchingFields{index.MailboxEmail: mb.Spec.Email}, client.UnsafeDisableDeepCopy); err != nil {
		return "", ""
	}
	for i := range same.Items {
		other := &same.Items[i]
		if other.Namespace == mb.Namespace || !r.Shard.Contains(ctx, other.Namespace) {
			continue // another shard's receiver takes the other's events: no ambiguity here
		}
		var op bgv1.ProtectionPolicy
		if err := r.Get(ctx, types.NamespacedName{Namespace: other.Namespace, Name: other.PolicyName()}, &op); err != nil {
			continue
		}
		if op.Spec.Smartlead.OrganizationID == org && (op.Spec.Smartlead.WebhookSecretRef == nil) == (policy.Spec.Smartlead.WebhookSecretRef == nil) {
			return bgv1.ReasonDuplicateAddress, "the same address is a Mailbox in another namespace under a policy that receives " +
				"the same Smartlead organization's webhooks as strongly; its webhooks are refused (409) until only one remains"
		}
	}
	return "", ""
}

// action is the outcome of the Smartlead side of a reconcile.
type action struct {
	// want is true when Enforce wants the mailbox paused; reason says why.
	want   bool
	reason string
	// held explains why a wanted pause was held back by the safety limit.
	held string
	// unavailable explains why Smartlead could not be called (no API key, ...).
	unavailable string
	// gone explains why a wanted pause is not made: Smartlead no longer has the account.
	gone string
	// err is an error of the reconcile itself (reading the API key Secret, ...).
	err error
	// queue, when set, asks for the Smartlead calls to be made on that API key's queue.
	queue *Credentials
}

// enforce asks protection.SmartleadStep whether the mailbox needs a Smartlead call (a pause, a resume, a
// reapply) as the mode and state want, applies the safety limit to a new pause, and checks that the API key
// is there; the calls themselves are queued (act.queue) and made by carryOut, which decides again.
func (r *MailboxReconciler) enforce(ctx context.Context, mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy,
	rules protection.Rules, domainHealth bgv1.Health) action {
	var a action
	a.want, a.reason = protection.WantPaused(rules.Mode, mb.Status.Health, domainHealth)
	a.reason = ownReason(mb, a.reason)
	sl := &mb.Status.Smartlead
	key := client.ObjectKeyFromObject(mb)
	if sl.AccountGone && (anotherAccount(mb) || pausedSince(mb, sl.LastAttemptAt)) {
		// There is another account to act on, or a new pause began since the account was found gone: look
		// again (once a pause, so a gone account costs one call per pause at most).
		if mb.Spec.SmartleadAccountID == nil {
			sl.AccountID = 0
		}
		sl.AccountGone = false
	}
	if a.want && sl.Paused {
		sl.Reason = a.reason // e.g. its own pause ended while its domain is still paused
	}
	switch protection.SmartleadStep(stepInput(mb, policy, a.want)) {
	case protection.StepNone:
		switch {
		case a.want && !holdsPause(sl): // wanted, nothing held, and not to be paused: the account is gone
			a.gone = "Smartlead no longer has its account"
		case !a.want:
			r.notePaused(key, false) // a reservation for a pause no longer wanted
		}
		return a
	case protection.StepPause:
		if holdsPause(sl) || a.reason == bgv1.ReasonHold {
			break // a pause begun is finished, and a person's hold is not the limit's to hold back
		}
		// The check reserves a place under the limit; unless the pause is queued, it is given back.
		defer func() {
			if a.queue == nil {
				r.notePaused(key, false)
			}
		}()
		if ok, msg := r.safetyAllows(ctx, mb, rules); !ok {
			a.held = msg
			if cond := meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPaused); cond == nil || cond.Reason != bgv1.ReasonSafetyLimit {
				r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, bgv1.EventPauseHeld, "Pause",
					"not paused in Smartlead: %s; a person must look", msg)
				notifierOr(r.Notifier).Notify(policy, bgv1.Notice{Event: bgv1.NotifySafetyHold, Mailbox: mb.Spec.Email, Domain: mb.Domain(),
					Evidence: "not paused in Smartlead: " + msg + "; a person must look"})
			}
			return a
		}
	}
	creds := enforcementCredentials(mb, policy)
	if _, err := r.Smartlead.For(ctx, creds); err != nil {
		if errors.Is(err, ErrNoAPIKey) {
			a.unavailable = err.Error()
			return a
		}
		a.err = err
		return a
	}
	a.queue = &creds
	return a
}

// anotherAccount reports whether a mailbox whose account Smartlead no longer has names another one now:
// its spec names another id, or the last account sync found another account for its address.
func anotherAccount(mb *bgv1.Mailbox) bool {
	id := mb.Status.Smartlead.AccountID
	if spec := mb.Spec.SmartleadAccountID; spec != nil {
		return *spec != id
	}
	acc := mb.Status.Account
	return acc != nil && !acc.Missing && acc.ID != 0 && acc.ID != id
}

// pausedSince reports whether the mailbox's own pause began after t.
func pausedSince(mb *bgv1.Mailbox, t *metav1.Time) bool {
	return mb.Status.PausedAt != nil && t != nil && mb.Status.PausedAt.After(t.Time)
}

// finalize resumes in Smartlead a deleted mailbox that bounceguard paused, then lets it go. When that
// cannot be done at all (its policy or API key is gone) it says so in a Warning Event and lets it go
// anyway: a deletion must not hang on a missing Secret. A failing call is retried.
func (r *MailboxReconciler) finalize(ctx context.Context, mb *bgv1.Mailbox, now time.Time, save func(context.Context) error) error {
	if !controllerutil.ContainsFinalizer(mb, bgv1.FinalizerSmartlead) {
		return nil
	}
	if holdsPause(&mb.Status.Smartlead) {
		creds, recorded := pauseCredentials(mb)
		var err error
		if !recorded { // paused by a version that did not record its credentials
			var policy bgv1.ProtectionPolicy
			if err = r.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}, &policy); err == nil {
				creds = CredentialsOf(&policy)
			}
		}
		var sc smartlead.Client
		if err == nil {
			sc, err = r.Smartlead.For(ctx, creds)
		}
		switch {
		case err == nil:
			enf := &enforcer{sl: sc, creds: creds, mb: mb, now: now, save: save, report: r.reporter(mb)}
			err := enf.resume(ctx)
			switch {
			case err == nil:
				r.Recorder.Eventf(mb, nil, corev1.EventTypeNormal, bgv1.EventResumedInSmartlead, "Resume",
					"resumed in Smartlead (account %d) before the Mailbox is deleted", mb.Status.Smartlead.AccountID)
			case errors.Is(err, errAccountGone):
				r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, bgv1.EventAccountGone, "Resume", "%s", accountGoneMessage(mb))
			case enf.refused(ctx, err):
				// No retry changes the answer: the deletion goes on, and a person is told what is left to do.
				r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, bgv1.EventSmartleadFailed, "Resume",
					"deleted while paused in Smartlead (account %d), and Smartlead refused the resume for good: %s; "+
						"resume it in Smartlead by hand", mb.Status.Smartlead.AccountID, truncate(err.Error(), 512))
			default:
				return err
			}
		case apierrors.IsNotFound(err) || errors.Is(err, ErrNoAPIKey):
			r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, bgv1.EventSmartleadFailed, "Resume",
				"deleted while paused in Smartlead (account %d), and it cannot be resumed: %s; resume it in Smartlead by hand",
				mb.Status.Smartlead.AccountID, err.Error())
		default:
			return err
		}
	}
	r.notePaused(client.ObjectKeyFromObject(mb), false)
	return r.setFinalizer(ctx, mb, false)
}

// setFinalizer adds or removes bgv1.FinalizerSmartlead with optimistic concurrency: it reads the mailbox from
// the API server, patches its finalizers conditionally on that resourceVersion, and on a conflict reads
// again, so that another controller's finalizer added meanwhile is never dropped. The status this
// reconcile is computing is not touched.
func (r *MailboxReconciler) setFinalizer(ctx context.Context, mb *bgv1.Mailbox, present bool) error {
	if controllerutil.ContainsFinalizer(mb, bgv1.FinalizerSmartlead) == present {
		return nil
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := &bgv1.Mailbox{}
		if err := reader.Get(ctx, client.ObjectKeyFromObject(mb), cur); err != nil {
			return err
		}
		if controllerutil.ContainsFinalizer(cur, bgv1.FinalizerSmartlead) == present {
			mb.Finalizers = cur.Finalizers
			return nil
		}
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if present {
			controllerutil.AddFinalizer(cur, bgv1.FinalizerSmartlead)
		} else {
			controllerutil.RemoveFinalizer(cur, bgv1.FinalizerSmartlead)
		}
		if err := r.Patch(ctx, cur, patch); err != nil {
			return err
		}
		mb.Finalizers = cur.Finalizers
		return nil
	})
	if err != nil && (!apierrors.IsNotFound(err) || present) {
		return fmt.Errorf("updating the finalizer: %w", err)
	}
	return nil
}

// reporter returns the enforcer's way to tell a person about a skipped step: a Warning Event.
func (r *MailboxReconciler) reporter(mb *bgv1.Mailbox) func(reason, message string) {
	return func(reason, message string) {
		r.Recorder.Eventf(mb, nil, corev1.EventTypeWarning, reason, "Smartlead", "%s", message)
	}
}

// setMailboxConditions writes Warning, Paused, PauseRecommended and Ready from the mailbox's state. Messages
// carry the evidence of the last transition, not live numbers, so they change only when the state does.
func setMailboxConditions(mb *bgv1.Mailbox, mode bgv1.Mode, domainHealth bgv1.Health, domainMessage string, a action) {
	st := &mb.Status
	gen := mb.Generation
	conds := &st.Conditions
	switch st.Health {
	case bgv1.HealthWarning:
		setCondition(conds, gen, bgv1.ConditionWarning, true, st.HealthReason, st.Evidence())
	case bgv1.HealthPaused, bgv1.HealthRecovering:
		// Past warning: Paused and status.history tell the story, within the 4 KiB a Mailbox keeps under.
		meta.RemoveStatusCondition(conds, bgv1.ConditionWarning)
	default:
		setCondition(conds, gen, bgv1.ConditionWarning, false, bgv1.ReasonNotWarning, "health is "+string(st.Health))
	}

	would, why := protection.WouldPause(st.Health, domainHealth)
	why = ownReason(mb, why)
	switch {
	case st.Smartlead.Paused:
		setCondition(conds, gen, bgv1.ConditionPaused, true, st.Smartlead.Reason, pauseEvidence(mb, st.Smartlead.Reason, domainMessage))
	case a.held != "":
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonSafetyLimit, "not paused in Smartlead: "+a.held)
	case a.unavailable != "":
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonSmartleadUnavailable, "cannot pause in Smartlead: "+a.unavailable)
	case a.gone != "":
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonAccountGone, "not paused in Smartlead: "+a.gone)
	case a.err != nil || (a.want && st.Smartlead.LastError != ""):
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonSmartleadError,
			fmt.Sprintf("Smartlead %s failed: %s", st.Smartlead.LastOperation, st.Smartlead.LastError))
	case a.want && a.queue != nil:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonPausing,
			"pausing in Smartlead: "+pauseEvidence(mb, why, domainMessage))
	case would && mode != bgv1.ModeEnforce:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonNotEnforced,
			fmt.Sprintf("mode is %s, so Smartlead is not called; Enforce would pause it: %s", mode, pauseEvidence(mb, why, domainMessage)))
	default:
		setCondition(conds, gen, bgv1.ConditionPaused, false, bgv1.ReasonSending, "sending is not paused")
	}

	if mode == bgv1.ModeSuggest {
		if would {
			setCondition(conds, gen, bgv1.ConditionPauseRecommended, true, why, pauseEvidence(mb, why, domainMessage))
		} else {
			setCondition(conds, gen, bgv1.ConditionPauseRecommended, false, bgv1.ReasonNotRecommended, "health is "+string(st.Health))
		}
	} else {
		meta.RemoveStatusCondition(conds, bgv1.ConditionPauseRecommended)
	}

	switch {
	case a.unavailable != "":
		setReady(conds, gen, bgv1.ReasonSmartleadUnavailable, a.unavailable)
	default:
		// Not the mode: the policy shows it, and naming it here would make a mode change rewrite every Mailbox.
		setCondition(conds, gen, bgv1.ConditionReady, true, bgv1.ReasonReady, "governed by ProtectionPolicy "+mb.PolicyName())
	}
}

// ownReason names a pause of the mailbox's own health Hold when a person holds it.
func ownReason(mb *bgv1.Mailbox, reason string) string {
	if reason == bgv1.ReasonBounceThreshold && mb.Status.HealthReason == bgv1.ReasonHold {
		return bgv1.ReasonHold
	}
	return reason
}

// pauseEvidence explains a pause: the mailbox's own evidence, or its domain's.
func pauseEvidence(mb *bgv1.Mailbox, reason, domainMessage string) string {
	if reason == bgv1.ReasonDomainPaused {
		msg := fmt.Sprintf("its domain %s is Paused", mb.Domain())
		if domainMessage != "" {
			msg += ": " + domainMessage
		}
		return msg
	}
	msg := mb.Status.Evidence()
	if reason == bgv1.ReasonHold {
		return msg
	}
	if mb.Status.ResumeAt != nil {
		msg += "; cooldown until " + mb.Status.ResumeAt.UTC().Format(time.RFC3339)
	} else if mb.Status.Health == bgv1.HealthPaused {
		msg += "; recovery.automatic is false: set annotation " + bgv1.AnnotationResume + " to resume"
	}
	return msg
}

// transitionEvent records a health transition of a Mailbox or Domain: Normal in Observe, Warning in
// Suggest and Enforce when it gets worse (recoveries are always Normal).
// notifyTransition announces a mailbox's own transition: Warning in any mode, a crossed pause threshold in
// Observe and Suggest (in Enforce the pause itself is announced once Smartlead has it, by carryOut).
func (r *MailboxReconciler) notifyTransition(policy *bgv1.ProtectionPolicy, mb *bgv1.Mailbox, mode bgv1.Mode, t *protection.Transition) {
	n := bgv1.Notice{Mailbox: mb.Spec.Email, Domain: mb.Domain(), Evidence: t.Message}
	switch {
	case t.To == bgv1.HealthWarning:
		n.Event = bgv1.NotifyWarning
	case t.To == bgv1.HealthPaused && mode != bgv1.ModeEnforce:
		n.Event, n.Evidence = bgv1.NotifyPauseRecommended, t.Message+modeNote(mode)
	default:
		return
	}
	notifierOr(r.Notifier).Notify(policy, n)
}

func transitionEvent(rec recorder.EventRecorder, obj client.Object, mode bgv1.Mode, t *protection.Transition) {
	rec.Eventf(obj, nil, transitionEventType(mode, t), t.Reason, "Transition", "%s -> %s: %s", t.From, t.To, t.Message)
}

func transitionEventType(mode bgv1.Mode, t *protection.Transition) string {
	if mode != bgv1.ModeObserve && (t.To == bgv1.HealthWarning || t.To == bgv1.HealthPaused) {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

// safetyAllows applies the policy's safety limit to pausing one more mailbox and, when it allows it,
// reserves the place (pausedRecently) under the same lock, so that concurrent reconciles cannot together
// pause past the limit.
func (r *MailboxReconciler) safetyAllows(ctx context.Context, mb *bgv1.Mailbox, rules protection.Rules) (bool, string) {
	policy := types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}
	view, err := viewOf(ctx, r.Client, r.Fleet, policy)
	if err != nil {
		return false, "cannot count the policy's paused mailboxes: " + err.Error()
	}
	counts := view.Counts(policy)
	key := client.ObjectKeyFromObject(mb)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Paused: those that hold a pause, and those this reconciler reserved or paused before the cache shows it.
	paused := counts.HoldingPause
	for k := range r.pausedRecently {
		if k == key || k.Namespace != policy.Namespace {
			continue // its own reservation is the place being asked for
		}
		if f, ok := view.facts(k); ok && f.policy == policy.Name && !f.holdsPause {
			paused++
		}
	}
	if f, ok := view.facts(key); ok && f.holdsPause {
		paused-- // it holds (part of) a pause already: asking again is not one more
	}
	ok, msg := protection.SafetyAllows(rules, counts.Mailboxes, paused)
	if ok {
		if r.pausedRecently == nil {
			r.pausedRecently = map[types.NamespacedName]bool{}
		}
		r.pausedRecently[key] = true
	}
	return ok, msg
}

func (r *MailboxReconciler) notePaused(key types.NamespacedName, paused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pausedRecently == nil {
		r.pausedRecently = map[types.NamespacedName]bool{}
	}
	if paused {
		r.pausedRecently[key] = true
	} else {
		delete(r.pausedRecently, key)
	}
}

// saveSmartlead writes status.smartlead alone, at once (merge patch, only what changed since the last
// save), and marks it saved in before so that the reconcile's final patch does not repeat it. It returns
// the mailbox's resourceVersion after the write.
func (r *MailboxReconciler) saveSmartlead(ctx context.Context, before, mb *bgv1.Mailbox) (string, error) {
	meta := metav1.ObjectMeta{Name: mb.Name, Namespace: mb.Namespace}
	old := &bgv1.Mailbox{ObjectMeta: meta, Status: bgv1.MailboxStatus{Smartlead: *before.Status.Smartlead.DeepCopy()}}
	cur := &bgv1.Mailbox{ObjectMeta: meta, Status: bgv1.MailboxStatus{Smartlead: *mb.Status.Smartlead.DeepCopy()}}
	if err := patchStatus(ctx, r.Client, old, cur); err != nil {
		return "", fmt.Errorf("recording the Smartlead outcome: %w", err)
	}
	before.Status.Smartlead = *mb.Status.Smartlead.DeepCopy()
	return cur.ResourceVersion, nil
}

// clockNow reads the reconcilers' clock; a nil clock is the real one.
func clockNow(c clock.PassiveClock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}

// SetupWithManager registers the reconciler. It runs on every change of a Mailbox (the receiver's tallies
// included), when its policy's spec or readiness changes, and when its Domain's health changes.
func (r *MailboxReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return r.Shard.watchNamespaces(ctrl.NewControllerManagedBy(mgr), r.Client, &bgv1.MailboxList{}).
		Watches(&bgv1.Mailbox{}, mailboxChanges()).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(concurrency, 1)}).
		// A policy change reaches every mailbox of it: at low priority, so that thousands of them do not
		// hold up a threshold crossing that a receiver write brings meanwhile.
		Watches(&bgv1.ProtectionPolicy{}, lowPriority(handler.EnqueueRequestsFromMapFunc(r.mailboxesOf(index.MailboxPolicy))),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.Funcs{
				UpdateFunc: func(e event.UpdateEvent) bool {
					return conditionStatus(e.ObjectOld.(*bgv1.ProtectionPolicy).Status.Conditions, bgv1.ConditionReady) !=
						conditionStatus(e.ObjectNew.(*bgv1.ProtectionPolicy).Status.Conditions, bgv1.ConditionReady)
				}}))).
		Watches(&bgv1.Domain{}, handler.EnqueueRequestsFromMapFunc(r.mailboxesOf(index.MailboxDomain)),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.(*bgv1.Domain).Status.Health != e.ObjectNew.(*bgv1.Domain).Status.Health
			}})).
		// A Mailbox with the same address appearing or going in another namespace may make or end a
		// DuplicateAddress: look at the others again.
		Watches(&bgv1.Mailbox{}, handler.EnqueueRequestsFromMapFunc(r.sameAddress),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }})).
		Named("mailbox").
		Complete(r)
}

// sameAddress maps a Mailbox to the Mailboxes of other namespaces with the same address.
func (r *MailboxReconciler) sameAddress(ctx context.Context, o client.Object) []reconcile.Request {
	mb := o.(*bgv1.Mailbox)
	var list bgv1.MailboxList
	if err := r.List(ctx, &list, client.MatchingFields{index.MailboxEmail: mb.Spec.Email}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Namespace != mb.Namespace {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// mailboxesOf maps a policy or domain to the mailboxes that the field index relates to it by name.
func (r *MailboxReconciler) mailboxesOf(field string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return requestsFor(ctx, r.Client, &bgv1.MailboxList{}, field, o)
	}
}

// setCondition sets one condition; meta.SetStatusCondition keeps lastTransitionTime unless the status changes.
func setCondition(conds *[]metav1.Condition, gen int64, typ string, status bool, reason, message string) {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: truncate(message, 32768),
		ObservedGeneration: gen})
}

// setReady sets Ready False with a reason.
func setReady(conds *[]metav1.Condition, gen int64, reason, message string) {
	setCondition(conds, gen, bgv1.ConditionReady, false, reason, message)
}

func conditionStatus(conds []metav1.Condition, typ string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return c.Status
	}
	return ""
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	return min(a, b)
}
