package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// DefaultSyncInterval is how often a policy's accounts are read when spec.smartlead.sync.interval is unset.
const DefaultSyncInterval = 10 * time.Minute

// SyncWriteQPS paces a sync's writes (AccountSyncReconciler.Writes, in writes per second): a first sync of
// 10,000 accounts creates their Mailboxes in 200 s, leaving the API server room for the receiver's writes
// meanwhile.
const SyncWriteQPS = 50

// syncRetry is how soon a failed sync is tried again (at most the policy's interval).
const syncRetry = time.Minute

// DefaultSyncDeadline bounds one sync: reading 1,000 pages (the most a listing reads) at Smartlead's
// Standard rate of 60 requests a minute takes under 17 minutes.
const DefaultSyncDeadline = 20 * time.Minute

// AccountSyncReconciler keeps the Mailboxes of a policy in step with the email accounts of its Smartlead
// organization: every spec.smartlead.sync.interval, once after start, and when the policy's
// bounceguard.io/sync annotation takes a new value, it reads the accounts (a page of 100 at a time, within
// the API key's shared rate limit), creates a Mailbox for each account without one, and writes to each of
// the policy's Mailboxes what Smartlead shows of its account (status.account) — only when that changed,
// so that a fleet of 10,000 quiet accounts costs no write at all. The Mailbox reconciler turns what it
// wrote into conditions (AccountFound, Drifted, Unmonitored), Events, notifications and a reapplied pause.
type AccountSyncReconciler struct {
	client.Client
	// Shard restricts the syncs to the namespaces of its shard; nil: every namespace.
	Shard *Shard
	// Recorder emits Kubernetes Events.
	Recorder recorder.EventRecorder
	// Clock is the time source; default the real clock.
	Clock clock.PassiveClock
	// Smartlead returns the Smartlead client of a policy.
	Smartlead SmartleadProvider
	// Writes paces a sync's Mailbox creations and status writes, so that a first sync of a large
	// organization does not crowd out the receiver's writes; nil: unpaced.
	Writes *rate.Limiter
	// APIReader reads from the API server directly: before creating Mailboxes, the namespace's Mailboxes
	// are listed there, not from the cache; nil: the cache alone.
	APIReader client.Reader
	// Notifier, when set, lets go of the notification targets a policy no longer names, or all of a
	// deleted policy's.
	Notifier Notifier
	// Deadline bounds one sync, its Smartlead reads and its writes; 0: DefaultSyncDeadline.
	Deadline time.Duration

	mu sync.Mutex
	// synced holds the policies synced since this process started: each is synced once at start,
	// whatever its lastSyncTime says.
	synced map[types.NamespacedName]bool
}

// +kubebuilder:rbac:groups=bounceguard.io,resources=protectionpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=bounceguard.io,resources=protectionpolicies/status,verbs=update;patch
// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=bounceguard.io,resources=mailboxes/status,verbs=update;patch

// SyncInterval returns a policy's account sync interval; 0 means the sync is off.
func SyncInterval(p *bgv1.ProtectionPolicy) time.Duration {
	if d := p.Spec.Smartlead.Sync.Interval; d != nil {
		return max(d.Duration, 0)
	}
	return DefaultSyncInterval
}

// Reconcile implements reconcile.Reconciler: it syncs the policy when a sync is due and comes back when
// the next one is.
func (r *AccountSyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !r.Shard.Contains(ctx, req.Namespace) {
		return ctrl.Result{}, nil
	}
	var p bgv1.ProtectionPolicy
	if err := r.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			r.mu.Lock()
			delete(r.synced, req.NamespacedName)
			r.mu.Unlock()
			syncFindingsGauge.DeletePartialMatch(prometheus.Labels{"namespace": req.Namespace, "policy": req.Name})
			releasePolicy(r.Smartlead, req.NamespacedName)
			notifierOr(r.Notifier).Retain(req.NamespacedName, nil)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	notifierOr(r.Notifier).Retain(req.NamespacedName, &p) // a target its spec no longer names goes
	interval := SyncInterval(&p)
	if interval == 0 || p.Spec.Smartlead.APIKeySecretRef == nil || !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	now := clockNow(r.Clock)
	r.mu.Lock()
	syncedSinceStart := r.synced[req.NamespacedName]
	r.mu.Unlock()
	request := p.Annotations[bgv1.AnnotationSync]
	if last := p.Status.LastSyncTime; syncedSinceStart && last != nil && request == p.Status.SyncRequest {
		if next := last.Add(interval); now.Before(next) {
			return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
		}
	}

	before := p.DeepCopy()
	found, err := r.syncWithin(ctx, &p, now)
	p.Status.SyncRequest = request
	syncs.WithLabelValues(map[bool]string{true: "ok", false: "failed"}[err == nil]).Inc()
	if err != nil {
		msg := truncate(err.Error(), 1024)
		if p.Status.LastSyncError != msg {
			r.Recorder.Eventf(&p, nil, corev1.EventTypeWarning, bgv1.EventSyncFailed, "Sync", "%s", msg)
		}
		p.Status.LastSyncError = msg
	} else {
		p.Status.LastSyncTime, p.Status.Accounts, p.Status.LastSyncError = &metav1.Time{Time: now}, int32(found), ""
		r.mu.Lock()
		if r.synced == nil {
			r.synced = map[types.NamespacedName]bool{}
		}
		r.synced[req.NamespacedName] = true
		r.mu.Unlock()
	}
	// A merge patch of these fields alone: the ProtectionPolicy reconciler owns the rest of the status.
	if perr := r.Status().Patch(ctx, &p, client.MergeFrom(before)); perr != nil {
		return ctrl.Result{}, fmt.Errorf("recording the sync in the policy's status: %w", perr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctrl.Result{}, ctx.Err()
		}
		return ctrl.Result{RequeueAfter: min(interval, syncRetry)}, nil
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// syncResult counts what one sync did, for its Event.
type syncResult struct {
	created, updated, missing, unmonitored, drifted int
}

// syncWithin runs one sync within the reconciler's deadline and says so when that is what stopped it.
func (r *AccountSyncReconciler) syncWithin(ctx context.Context, p *bgv1.ProtectionPolicy, now time.Time) (int, error) {
	deadline := r.Deadline
	if deadline <= 0 {
		deadline = DefaultSyncDeadline
	}
	// The sync's reads wait behind every pause, resume and drift reapply of the key.
	sctx, cancel := context.WithTimeout(smartlead.WithPriority(ctx, smartlead.PrioritySync), deadline)
	defer cancel()
	found, err := r.sync(sctx, p, now)
	if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("the sync did not finish within %s: %w", deadline, err)
	}
	return found, err
}

// sync reads the policy's accounts and brings its Mailboxes in step; it returns how many accounts it read.
func (r *AccountSyncReconciler) sync(ctx context.Context, p *bgv1.ProtectionPolicy, now time.Time) (int, error) {
	sc, err := r.Smartlead.For(ctx, CredentialsOf(p))
	if err != nil {
		return 0, err
	}
	// The Mailboxes first, then the accounts: every pause a Mailbox shows took effect before the accounts
	// were read, so an account is never judged against a pause it predates (protection.Drift).
	var list bgv1.MailboxList
	if err := r.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		return 0, fmt.Errorf("listing the Mailboxes: %w", err)
	}
	accounts, err := sc.ListAccounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the Smartlead accounts: %w", err)
	}
	byEmail := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		byEmail[list.Items[i].Spec.Email] = true
	}
	byID := make(map[int64]*smartlead.Account, len(accounts))
	byAddress := make(map[string]*smartlead.Account, len(accounts))
	for i := range accounts {
		a := &accounts[i]
		byID[a.ID] = a
		byAddress[smartlead.NormalEmail(a.FromEmail)] = a
	}

	var res syncResult
	var errs []error
	if ptr.Deref(p.Spec.Smartlead.Sync.CreateMailboxes, true) {
		if err := r.freshAddresses(ctx, p.Namespace, accounts, byEmail); err != nil {
			return len(accounts), err
		}
		for i := range accounts {
			a := &accounts[i]
			email := smartlead.NormalEmail(a.FromEmail)
			if email == "" || byEmail[email] {
				continue
			}
			byEmail[email] = true
			created, err := r.createMailbox(ctx, p, email, a.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if created {
				res.created++
			}
		}
	}
	for i := range list.Items {
		mb := &list.Items[i]
		if mb.PolicyName() != p.Name || !mb.DeletionTimestamp.IsZero() {
			continue
		}
		acc := accountOf(mb, byID, byAddress)
		next, err := accountState(ctx, sc, mb, acc, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case next.Missing:
			res.missing++
		case next.Gap != nil:
			res.unmonitored++
		}
		if drifted, _ := protection.Drift(&mb.Status.Smartlead, next); drifted {
			res.drifted++
		}
		if equality.Semantic.DeepEqual(mb.Status.Account, next) {
			continue
		}
		if err := r.wait(ctx); err != nil {
			return len(accounts), err
		}
		before := mb.DeepCopy()
		mb.Status.Account = next
		if err := r.Status().Patch(ctx, mb, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("writing status.account of Mailbox %s: %w", mb.Name, err))
			continue
		}
		res.updated++
	}
	for finding, n := range map[string]int{"drifted": res.drifted, "unmonitored": res.unmonitored, "missing": res.missing} {
		syncFindingsGauge.WithLabelValues(p.Namespace, p.Name, finding).Set(float64(n))
	}
	if res.created+res.updated > 0 || len(errs) > 0 {
		r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, bgv1.EventSynced, "Sync",
			"read %d Smartlead accounts: %d Mailboxes created, %d updated; %d accounts not found, %d drifted, %d unmonitored",
			len(accounts), res.created, res.updated, res.missing, res.drifted, res.unmonitored)
	}
	log.FromContext(ctx).V(1).Info("account sync", "accounts", len(accounts), "created", res.created, "updated", res.updated,
		"missing", res.missing, "drifted", res.drifted, "unmonitored", res.unmonitored)
	if len(errs) > 0 {
		return len(accounts), fmt.Errorf("%d of the sync's writes failed, the first: %w", len(errs), errs[0])
	}
	return len(accounts), nil
}

// freshAddresses adds to byEmail the addresses of the namespace's Mailboxes as the API server has them, when
// the cache knows none for some account: a Mailbox created a moment ago (by a person, GitOps, or the
// receiver) must not get a twin. Once every account has its Mailbox, a sync makes no such read.
func (r *AccountSyncReconciler) freshAddresses(ctx context.Context, namespace string, accounts []smartlead.Account, byEmail map[string]bool) error {
	if r.APIReader == nil || !slices.ContainsFunc(accounts, func(a smartlead.Account) bool {
		email := smartlead.NormalEmail(a.FromEmail)
		return email != "" && !byEmail[email]
	}) {
		return nil
	}
	var fresh bgv1.MailboxList
	if err := r.APIReader.List(ctx, &fresh, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("listing the Mailboxes from the API server: %w", err)
	}
	for i := range fresh.Items {
		byEmail[fresh.Items[i].Spec.Email] = true
	}
	return nil
}

// wait paces one write of a sync.
func (r *AccountSyncReconciler) wait(ctx context.Context) error {
	if r.Writes == nil {
		return nil
	}
	return r.Writes.Wait(ctx)
}

// createMailbox creates the Mailbox of an account that has none, named after its address (with a digest
// when that name is taken), labelled as bounceguard's own and governed by the policy that found it.
func (r *AccountSyncReconciler) createMailbox(ctx context.Context, p *bgv1.ProtectionPolicy, email string, id int64) (bool, error) {
	if err := r.wait(ctx); err != nil {
		return false, err
	}
	var err error
	for _, name := range bgv1.MailboxNames(email) {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace,
			Labels: map[string]string{bgv1.LabelManagedBy: bgv1.ManagedByValue}},
			Spec: bgv1.MailboxSpec{Email: email, SmartleadAccountID: ptr.To(id), PolicyRef: bgv1.LocalPolicyReference{Name: p.Name}}}
		if err = r.Create(ctx, mb); err == nil {
			r.Recorder.Eventf(mb, nil, corev1.EventTypeNormal, bgv1.EventMailboxCreated, "Sync",
				"created by the account sync of ProtectionPolicy %s for Smartlead account %d", p.Name, id)
			return true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			break
		}
		var existing bgv1.Mailbox
		if r.APIReader != nil && r.APIReader.Get(ctx, client.ObjectKeyFromObject(mb), &existing) == nil && existing.Spec.Email == email {
			return false, nil // it has its Mailbox, made meanwhile: no twin under the digest name
		}
	}
	if apierrors.IsInvalid(err) {
		// An address the Mailbox schema refuses: reported, never retried in a loop.
		return false, fmt.Errorf("Smartlead account %d: its address is not a valid Mailbox email: %w", id, err)
	}
	return false, fmt.Errorf("creating the Mailbox of Smartlead account %d: %w", id, err)
}

// accountOf finds a mailbox's account: by the id bounceguard knows for it (its spec, or the account it
// paused), else by its address. nil: Smartlead has none.
func accountOf(mb *bgv1.Mailbox, byID map[int64]*smartlead.Account, byAddress map[string]*smartlead.Account) *smartlead.Account {
	for _, id := range []int64{ptr.Deref(mb.Spec.SmartleadAccountID, 0), mb.Status.Smartlead.AccountID} {
		if id != 0 {
			return byID[id]
		}
	}
	return byAddress[mb.Spec.Email]
}

// accountState is what a sync records of a mailbox's account. Of an account bounceguard holds removed from
// campaigns it reads the account's campaigns (one call, for paused mailboxes only) to see whether it is back
// in any of them; a mailbox it does not hold paused it judges for coverage, keeping the counts of the sync
// that found a gap for as long as the gap lasts (so that a lasting gap costs no write per sync).
func accountState(ctx context.Context, sc smartlead.Client, mb *bgv1.Mailbox, acc *smartlead.Account, now time.Time) (*bgv1.AccountState, error) {
	if acc == nil {
		id := ptr.Deref(mb.Spec.SmartleadAccountID, mb.Status.Smartlead.AccountID)
		if id == 0 && mb.Status.Account != nil {
			id = mb.Status.Account.ID
		}
		return &bgv1.AccountState{ID: id, Missing: true}, nil
	}
	next := &bgv1.AccountState{ID: acc.ID, Suspended: acc.Suspended, DailyLimit: acc.MessagePerDay,
		WarmupEnabled: acc.WarmupEnabled(), SMTPOK: acc.SMTPOK, IMAPOK: acc.IMAPOK}
	sl := &mb.Status.Smartlead
	if holdsPause(sl) {
		if sl.Paused && sl.PausedAt != nil {
			next.PausedAt = sl.PausedAt.DeepCopy()
		}
		if sl.Paused && len(sl.RemovedCampaignIDs) > 0 {
			campaigns, err := sc.Campaigns(ctx, acc.ID)
			if err != nil && !errors.Is(err, smartlead.ErrNotFound) {
				return nil, fmt.Errorf("reading the campaigns of Smartlead account %d: %w", acc.ID, err)
			}
			for _, cid := range campaigns {
				if slices.Contains(sl.RemovedCampaignIDs, cid) {
					next.BackInCampaigns++
				}
			}
		}
		return next, nil
	}
	if mb.Status.Sent > 0 && mb.Status.Ledger.SendDay == 0 {
		return next, nil // its sends were counted before per-day counts existed: nothing to compare yet
	}
	received := tally.SendsSinceYesterday(&mb.Status.Ledger, now)
	if protection.Unmonitored(acc.DailySentCount, received) {
		next.Gap = &bgv1.CoverageGap{SentToday: acc.DailySentCount, Received: received}
		if old := mb.Status.Account; old != nil && old.Gap != nil {
			next.Gap = old.Gap.DeepCopy()
		}
	}
	return next, nil
}

// SetupWithManager registers the reconciler: on a policy's creation, a change of its spec, and a new
// value of its bounceguard.io/sync annotation; its own status writes do not wake it.
func (r *AccountSyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.Shard.watchNamespaces(ctrl.NewControllerManagedBy(mgr), r.Client, &bgv1.ProtectionPolicyList{}).
		For(&bgv1.ProtectionPolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{},
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.GetAnnotations()[bgv1.AnnotationSync] != e.ObjectNew.GetAnnotations()[bgv1.AnnotationSync]
			}}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("accountsync").
		Complete(r)
}
