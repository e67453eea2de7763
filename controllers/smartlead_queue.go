package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/smartlead"
)

// The Smartlead side of a mailbox, queued: the Mailbox reconciler (enforce) decides that a mailbox needs a
// Smartlead call and queues it on its API key's queue (queueSmartlead); a worker of that queue reads the
// mailbox again and carries the call out (carryOut), through the enforcer of smartlead_calls.go.

// smartleadWorkersPerKey is how many mailboxes of one API key are paused or resumed at once (they share
// the key's rate limiter anyway).
const smartleadWorkersPerKey = 2

// SmartleadQueues make the Smartlead calls off the reconcile path: one work queue, with its own workers
// and its own failure backoff, per set of credentials (API key Secret and base URL). The Mailbox
// reconciler writes health and conditions and queues the mailbox; a worker then reads the mailbox as
// written and pauses or resumes it. So a Smartlead outage of one key holds up that key's pauses alone:
// never a health write, a condition, the gate, or another key's pauses. It runs on the leader only.
type SmartleadQueues struct {
	// Carry is called for every queued mailbox; a returned error retries it after the queue's backoff.
	Carry func(ctx context.Context, key types.NamespacedName) error

	mu      sync.Mutex
	ctx     context.Context
	started chan struct{}
	queues  map[string]workqueue.TypedRateLimitingInterface[types.NamespacedName]
	// owed holds, per queue, the mailboxes added and not yet carried out (see owe, settle and releaseIdle).
	owed map[string]map[types.NamespacedName]bool
}

// NeedLeaderElection is true: only the leader reconciles, and so only the leader calls Smartlead.
func (q *SmartleadQueues) NeedLeaderElection() bool { return true }

// Start lets the workers run until ctx ends, then shuts the queues down.
func (q *SmartleadQueues) Start(ctx context.Context) error {
	q.mu.Lock()
	q.init()
	q.ctx = ctx
	close(q.started)
	q.mu.Unlock()
	<-ctx.Done()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, wq := range q.queues {
		wq.ShutDown()
	}
	return nil
}

func (q *SmartleadQueues) init() {
	if q.started == nil {
		q.started = make(chan struct{})
		q.queues = map[string]workqueue.TypedRateLimitingInterface[types.NamespacedName]{}
	}
}

// Add queues a mailbox for the Smartlead calls of creds; a mailbox already queued is queued once.
func (q *SmartleadQueues) Add(creds Credentials, key types.NamespacedName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.init()
	id := queueID(creds)
	q.releaseIdle(id)
	q.owe(id, key)
	wq, ok := q.queues[id]
	if !ok {
		wq = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 2*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{})
		q.queues[id] = wq
		for range smartleadWorkersPerKey {
			go q.work(id, wq)
		}
	}
	wq.Add(key)
}

// queueID names the queue of a set of credentials (never the key itself: only where it is kept).
func queueID(c Credentials) string {
	ref := bgv1.SecretKeySelector{}
	if c.APIKeySecretRef != nil {
		ref = *c.APIKeySecretRef
	}
	return c.Namespace + "\x00" + ref.Name + "\x00" + ref.Key + "\x00" + c.BaseURL
}

func (q *SmartleadQueues) work(id string, wq workqueue.TypedRateLimitingInterface[types.NamespacedName]) {
	<-q.started
	q.mu.Lock()
	ctx := q.ctx
	q.mu.Unlock()
	for {
		key, shutdown := wq.Get()
		if shutdown {
			return
		}
		err := q.Carry(ctx, key)
		if err != nil && ctx.Err() == nil {
			q.settle(id, key, false)
			log.FromContext(ctx).V(1).Info("Smartlead call failed; retrying after the key's backoff", "mailbox", key.String())
			wq.AddRateLimited(key)
		} else {
			wq.Forget(key)
		}
		wq.Done(key)
		if err == nil {
			q.settle(id, key, true)
		}
	}
}

// A per-key queue is let go once it owes nothing: every mailbox added to it has been carried out (a
// mailbox waiting for a retry after a failure is still owed, though the queue's length does not count
// it). A rotated key's queue and its workers do not stay for ever; a queue made again on the next Add is
// harmless, a queue dropped with work in it is not, and never happens.

// owe records that the queue id holds key until it is carried out; q.mu is held.
func (q *SmartleadQueues) owe(id string, key types.NamespacedName) {
	if q.owed == nil {
		q.owed = map[string]map[types.NamespacedName]bool{}
	}
	if q.owed[id] == nil {
		q.owed[id] = map[types.NamespacedName]bool{}
	}
	q.owed[id][key] = true
}

// settle records the outcome of carrying key out on the queue id: done, it is owed no more (called after
// wq.Done, so that a key added again meanwhile is back in the queue, where its length counts it); failed,
// it stays owed while it waits for its retry (called before it is re-added).
func (q *SmartleadQueues) settle(id string, key types.NamespacedName, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if done {
		delete(q.owed[id], key)
	} else {
		q.owe(id, key)
	}
}

// releaseIdle shuts down and forgets every queue but keep that owes nothing and holds nothing; q.mu is held.
func (q *SmartleadQueues) releaseIdle(keep string) {
	for id, wq := range q.queues {
		if id == keep || len(q.owed[id]) > 0 || wq.Len() > 0 {
			continue
		}
		wq.ShutDown()
		delete(q.queues, id)
		delete(q.owed, id)
	}
}

// Len is how many per-key queues are held.
func (q *SmartleadQueues) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queues)
}

// queueSmartlead hands a mailbox to its credentials' queue; without queues (tests of the reconciler
// alone) the calls are made at once.
func (r *MailboxReconciler) queueSmartlead(ctx context.Context, creds Credentials, key types.NamespacedName) {
	if r.Queues == nil {
		_ = r.carryOut(ctx, key)
		return
	}
	r.Queues.Add(creds, key)
}

// NewSmartleadQueues returns the Smartlead queues of the reconciler (its Queues): each queued mailbox's
// calls are made by the reconciler. The manager must run them (mgr.Add).
func (r *MailboxReconciler) NewSmartleadQueues() *SmartleadQueues {
	return &SmartleadQueues{Carry: r.carryOut}
}

// carryOut makes the Smartlead calls a mailbox needs now: it reads the mailbox as the reconciler wrote
// it, decides again with protection.SmartleadStep (the state may have moved on since it was queued), and
// pauses, reapplies or resumes it, writing each step's outcome to status.smartlead. That write wakes the
// reconciler, which sets the conditions.
func (r *MailboxReconciler) carryOut(ctx context.Context, key types.NamespacedName) error {
	var mb bgv1.Mailbox
	if err := r.Get(ctx, key, &mb); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !mb.DeletionTimestamp.IsZero() {
		return nil // the finalizer resumes it
	}
	var policy bgv1.ProtectionPolicy
	if err := r.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}, &policy); err != nil {
		return client.IgnoreNotFound(err) // the reconciler reports PolicyNotFound
	}
	if reason, _ := r.unusable(ctx, &mb, &policy); reason != "" {
		return nil
	}
	rules := protection.RulesFor(&policy)
	var domainHealth bgv1.Health
	domainMessage := ""
	if name := mb.Domain(); name != "" {
		var d bgv1.Domain
		if err := r.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: name}, &d); err == nil {
			domainHealth, domainMessage = d.Status.Health, d.Status.HealthMessage
		} else if !apierrors.IsNotFound(err) {
			return err
		}
	}
	want, reason := protection.WantPaused(rules.Mode, mb.Status.Health, domainHealth)
	reason = ownReason(&mb, reason)
	sl := &mb.Status.Smartlead
	step := protection.SmartleadStep(stepInput(&mb, &policy, want))
	if step == protection.StepNone {
		return nil
	}
	reapply := step == protection.StepReapply
	creds := enforcementCredentials(&mb, &policy)
	sc, err := r.Smartlead.For(ctx, creds)
	if err != nil {
		if errors.Is(err, ErrNoAPIKey) {
			return nil // the reconciler reports SmartleadUnavailable
		}
		return err
	}
	before := mb.DeepCopy()
	saved := ""
	save := func(ctx context.Context) error {
		rv, err := r.saveSmartlead(ctx, before, &mb)
		if err == nil {
			saved = rv
		}
		return err
	}
	defer func() {
		if saved != "" {
			// The next run for this mailbox, and its next reconcile, must see these outcomes.
			waitForCache(ctx, r.Client, &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{
				Name: mb.Name, Namespace: mb.Namespace, ResourceVersion: saved}})
		}
	}()
	now := clockNow(r.Clock)
	ctx = callPriority(ctx, reapply) // pauses and resumes before drift reapplies, both before sync reads
	e := &enforcer{sl: sc, creds: creds, mb: &mb, now: now, save: save, report: r.reporter(&mb)}
	if reapply {
		if err = e.reapply(ctx); err == nil {
			r.Recorder.Eventf(&mb, nil, corev1.EventTypeWarning, bgv1.EventReapplied, operationReapply,
				"paused again in Smartlead (account %d): someone had undone the pause; a further drift is left to a person", sl.AccountID)
		}
	} else if step == protection.StepPause {
		// The finalizer lets a deleted Mailbox be resumed in Smartlead first (see finalize).
		if err = r.setFinalizer(ctx, &mb, true); err == nil {
			err = e.pause(ctx, rules.PauseAction, reason)
		}
		if err == nil {
			r.notePaused(key, true)
			r.Recorder.Eventf(&mb, nil, corev1.EventTypeWarning, bgv1.EventPausedInSmartlead, "Pause",
				"paused in Smartlead (%s, account %d): %s", sl.Action, sl.AccountID, pauseEvidence(&mb, reason, domainMessage))
			if reason == bgv1.ReasonBounceThreshold && mb.Status.PausedAt != nil {
				// From the crossing (status.pausedAt: when the crossing event's write was judged Paused), not
				// from the mailbox's last event, which the sends still arriving meanwhile move on.
				timeToPause.Observe(clockNow(r.Clock).Sub(mb.Status.PausedAt.Time).Seconds())
			}
			notifierOr(r.Notifier).Notify(&policy, bgv1.Notice{Event: bgv1.NotifyPaused, Mailbox: mb.Spec.Email, Domain: mb.Domain(),
				Evidence: fmt.Sprintf("%s (%s, account %d)", pauseEvidence(&mb, reason, domainMessage), sl.Action, sl.AccountID)})
		}
	} else {
		if err = e.resume(ctx); err == nil {
			err = r.setFinalizer(ctx, &mb, false)
			r.notePaused(key, false)
			r.Recorder.Eventf(&mb, nil, corev1.EventTypeNormal, bgv1.EventResumedInSmartlead, "Resume",
				"resumed in Smartlead (account %d): health %s, mode %s", sl.AccountID, mb.Status.Health, rules.Mode)
			notifierOr(r.Notifier).Notify(&policy, bgv1.Notice{Event: bgv1.NotifyResumed, Mailbox: mb.Spec.Email, Domain: mb.Domain(),
				Evidence: fmt.Sprintf("resumed in Smartlead (account %d): health %s, %s", sl.AccountID, mb.Status.Health, mb.Status.Evidence())})
		}
	}
	if errors.Is(err, errAccountGone) {
		// Nothing is held in Smartlead any more: no place under the safety limit, no finalizer, no retry.
		r.notePaused(key, false)
		r.Recorder.Eventf(&mb, nil, corev1.EventTypeWarning, bgv1.EventAccountGone, sl.LastOperation, "%s", accountGoneMessage(&mb))
		return r.setFinalizer(ctx, &mb, false)
	}
	if err != nil {
		r.Recorder.Eventf(&mb, nil, corev1.EventTypeWarning, bgv1.EventSmartleadFailed, sl.LastOperation, "%s", truncate(err.Error(), 512))
		if before.Status.Smartlead.LastError == "" { // the first failure of a run of them, not every retry
			notifierOr(r.Notifier).Notify(&policy, bgv1.Notice{Event: bgv1.NotifySmartleadError, Mailbox: mb.Spec.Email, Domain: mb.Domain(),
				Evidence: fmt.Sprintf("Smartlead %s failed (retried with backoff): %s", sl.LastOperation, truncate(err.Error(), 200))})
		}
	}
	return err
}

// stepInput gathers the facts that decide a mailbox's Smartlead step (protection.SmartleadStep): whether
// the pause is wanted (want), and what its status.smartlead and last account sync record.
func stepInput(mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy, want bool) protection.StepInput {
	sl := &mb.Status.Smartlead
	return protection.StepInput{WantPaused: want, Paused: sl.Paused, HoldsPause: holdsPause(sl), AccountGone: sl.AccountGone,
		ReapplyDue: needsReapply(mb, policy)}
}

// needsReapply reports whether a pause that Smartlead shows undone is to be applied again: the policy says
// Reapply and it has not been reapplied yet in this pause.
func needsReapply(mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy) bool {
	if policy.Spec.Smartlead.Sync.Drift != bgv1.DriftReapply || mb.Status.Smartlead.Reapplied {
		return false
	}
	drifted, _ := protection.Drift(&mb.Status.Smartlead, mb.Status.Account)
	return drifted
}

// Urgency of the Smartlead calls of one carryOut: a drift reapply waits behind every pause and resume of
// its key, a pause or resume behind nothing; the account sync's reads wait behind both (syncPriority).
func callPriority(ctx context.Context, reapply bool) context.Context {
	if reapply {
		return smartlead.WithPriority(ctx, smartlead.PriorityReapply)
	}
	return smartlead.WithPriority(ctx, smartlead.PriorityEnforce)
}
