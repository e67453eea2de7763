package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead"
)

// The Smartlead calls of a mailbox: the credentials and clients they are made with (one rate limiter per
// API key, its budget the lowest its policies state), and the enforcer, which pauses, resumes and reapplies
// a mailbox's pause step by step, recording each step's outcome in status.smartlead.

// Credentials say how to reach Smartlead: the API key's Secret key in a namespace, and the base URL.
type Credentials struct {
	Namespace       string
	APIKeySecretRef *bgv1.SecretKeySelector
	BaseURL         string
	// Policy, when set, is the policy these credentials are of, and RateLimit the budget it states for the
	// key (the key's budget is the lowest its policies state); unset for the credentials a pause recorded.
	Policy    string
	RateLimit bgv1.SmartleadRateLimit
}

// CredentialsOf returns a policy's Smartlead credentials.
func CredentialsOf(p *bgv1.ProtectionPolicy) Credentials {
	return Credentials{Namespace: p.Namespace, APIKeySecretRef: p.Spec.Smartlead.APIKeySecretRef, BaseURL: p.Spec.Smartlead.BaseURL,
		Policy: p.Name, RateLimit: p.Spec.Smartlead.RateLimit}
}

// pauseCredentials returns the credentials recorded when a mailbox was paused, if any: a resume uses
// them, whatever its policy says by then (or when it is gone).
func pauseCredentials(mb *bgv1.Mailbox) (Credentials, bool) {
	st := &mb.Status.Smartlead
	if st.APIKeySecretRef == nil {
		return Credentials{}, false
	}
	return Credentials{Namespace: mb.Namespace, APIKeySecretRef: st.APIKeySecretRef, BaseURL: st.BaseURL}, true
}

// enforcementCredentials are the credentials a mailbox's Smartlead calls use: those that began a pause
// finish and resume it, whatever the policy says by then; else the policy's.
func enforcementCredentials(mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy) Credentials {
	if recorded, ok := pauseCredentials(mb); ok {
		return recorded
	}
	return CredentialsOf(policy)
}

// SmartleadProvider returns Smartlead clients.
type SmartleadProvider interface {
	// For returns a client for the credentials, or an error saying why there is none (the API key Secret
	// or key is missing). The error never holds the key.
	For(ctx context.Context, creds Credentials) (smartlead.Client, error)
}

// SecretSmartleadProvider builds HTTP clients from the policy's baseURL and API key Secret. All clients of
// one API key share one rate limiter.
type SecretSmartleadProvider struct {
	// Reader reads Secrets (the manager's cached client).
	Reader client.Reader
	// Limiters hands out the per-key rate limiters.
	Limiters *smartlead.Limiters
	// Accounts hands out the per-key account lists that account ids are resolved from; nil: a paging pass
	// per lookup.
	Accounts *smartlead.Directories
	// Options are passed to every client (Limiter and Observe are set by the provider).
	Options smartlead.Options
}

// ErrNoAPIKey is returned by a SmartleadProvider when the policy has no usable API key.
var ErrNoAPIKey = errors.New("no Smartlead API key")

// For implements SmartleadProvider.
func (p *SecretSmartleadProvider) For(ctx context.Context, creds Credentials) (smartlead.Client, error) {
	ref := creds.APIKeySecretRef
	if ref == nil {
		return nil, fmt.Errorf("%w: spec.smartlead.apiKeySecretRef is not set", ErrNoAPIKey)
	}
	var secret corev1.Secret
	if err := p.Reader.Get(ctx, types.NamespacedName{Namespace: creds.Namespace, Name: ref.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: Secret %q not found", ErrNoAPIKey, ref.Name)
		}
		return nil, fmt.Errorf("reading Secret %q: %w", ref.Name, err)
	}
	key := string(secret.Data[ref.Key])
	if key == "" {
		return nil, fmt.Errorf("%w: Secret %q has no key %q", ErrNoAPIKey, ref.Name, ref.Key)
	}
	opts := p.Options
	opts.Limiter = p.limiter(key, creds)
	if p.Accounts != nil {
		opts.Accounts = p.Accounts.For(creds.BaseURL, key)
	}
	opts.Observe = observeSmartleadCall
	return smartlead.New(creds.BaseURL, key, opts)
}

// limiter returns the key's shared limiter; credentials of a policy state its budget for the key first
// (the key's budget is the lowest its policies state), the credentials a pause recorded use the key's
// budget as it stands.
func (p *SecretSmartleadProvider) limiter(key string, creds Credentials) *smartlead.Limiter {
	if creds.Policy == "" {
		return p.Limiters.For(key)
	}
	return p.Limiters.Configure(key, budgetOwner(types.NamespacedName{Namespace: creds.Namespace, Name: creds.Policy}),
		budgetOf(creds.RateLimit))
}

// Release forgets what a deleted policy stated: its budget no longer lowers its key's, and its key's
// limiter and account directory go once nothing else uses them.
func (p *SecretSmartleadProvider) Release(policy types.NamespacedName) {
	p.Limiters.Forget(budgetOwner(policy))
}

// releaser is a SmartleadProvider that holds per-policy state to let go of when a policy is deleted.
type releaser interface {
	Release(policy types.NamespacedName)
}

// releasePolicy lets the provider forget a deleted policy, when it keeps anything of it.
func releasePolicy(provider SmartleadProvider, policy types.NamespacedName) {
	if r, ok := provider.(releaser); ok {
		r.Release(policy)
	}
}

func budgetOwner(policy types.NamespacedName) string { return policy.String() }

// budgetOf converts the API's rate limit (defaults applied by the API server; zero: the default).
func budgetOf(r bgv1.SmartleadRateLimit) smartlead.RateLimit {
	return smartlead.RateLimit{RequestsPerMinute: int(r.RequestsPerMinute), Burst: int(r.Burst)}
}

// Smartlead operations, as status.smartlead.lastOperation names the last one tried (and the action of the
// Events that report them). The values are user-visible: they never change. A finished pause records its
// action (Suspend, RemoveFromCampaigns, ZeroDailyLimit) as its last operation.
const (
	// operationResolveAccount looks up the account id of the mailbox's address.
	operationResolveAccount = "ResolveAccount"
	// operationSuspend suspends the account.
	operationSuspend = "Suspend"
	// operationRemoveFromCampaigns removes the account from a campaign (followed by the campaign's id).
	operationRemoveFromCampaigns = "RemoveFromCampaigns"
	// operationRestoreCampaigns adds the account back to a campaign it was removed from (followed by its id).
	operationRestoreCampaigns = "RestoreCampaigns"
	// operationUnsuspend unsuspends the account.
	operationUnsuspend = "Unsuspend"
	// operationGetCampaigns lists the account's campaigns.
	operationGetCampaigns = "GetCampaigns"
	// operationReadDailyLimit reads the account's daily limit, to restore it on resume.
	operationReadDailyLimit = "ReadDailyLimit"
	// operationZeroDailyLimit sets the account's daily limit to 0.
	operationZeroDailyLimit = "ZeroDailyLimit"
	// operationRestoreDailyLimit sets the account's daily limit back to the one read before the pause.
	operationRestoreDailyLimit = "RestoreDailyLimit"
	// operationResume is a resume done: every step of the pause undone.
	operationResume = "Resume"
	// operationReapply is a drifted pause applied again.
	operationReapply = "Reapply"
)

// enforcer carries out the Smartlead side of one mailbox reconcile. Every step's outcome is written to
// status.smartlead at once (save), before the next call, so a restart neither repeats a finished step
// nor forgets one that started: campaigns are recorded before the first removal, and removals and
// restores are idempotent in Smartlead.
type enforcer struct {
	sl    smartlead.Client
	creds Credentials
	mb    *bgv1.Mailbox
	now   time.Time
	save  func(ctx context.Context) error
	// report tells a person about a step that could not be done and was skipped (a Warning Event).
	report func(reason, message string)
}

// errAccountGone is returned by pause, resume and reapply when Smartlead no longer has the account (a
// person deleted it there): the pause record has ended, as nothing is left to undo, and
// status.smartlead.accountGone says so.
var errAccountGone = errors.New("the Smartlead account no longer exists")

// refusedForGood reports whether Smartlead refused a call in a way that no retry changes: a 4xx answer
// but 429 (the rate limit), 408 (a timeout), 401 and 403 (the API key: once a person fixes it, the call
// works). An archived campaign (400), a missing one (404) and a validation error (422) are refusals for
// good; 429, 5xx and calls that got no answer are retried.
func refusedForGood(err error) bool {
	var ae *smartlead.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch c := ae.StatusCode; c {
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusUnauthorized, http.StatusForbidden:
		return false
	default:
		return c >= 400 && c < 500
	}
}

// refused reports whether Smartlead refused a call for good (refusedForGood); a 404 only while Smartlead
// answers the account list, since a gateway between deploys, or a base URL that lost its path, answers
// 404 to every path: skipping a step then would end a pause that is still in force.
func (e *enforcer) refused(ctx context.Context, err error) bool {
	var ae *smartlead.APIError
	if !refusedForGood(err) || !errors.As(err, &ae) {
		return false
	}
	return ae.StatusCode != http.StatusNotFound || e.sl.Reachable(ctx) == nil
}

// gone reports whether a call about the account failed because Smartlead no longer has the account. A 404
// from the account's own path (GET or POST /email-accounts/{id}) is the account's (ownPath); anything else
// refused for good — suspend and unsuspend answer a missing account with 400, a campaign call with a 404
// that may be the campaign's — is confirmed by reading the account: gone only when that read answers 404.
// Either 404 counts only while Smartlead answers the account list: a gateway between deploys, or a base
// URL that lost its path, answers 404 to every path, and ending the record then would leave the account
// paused with nothing to undo it.
func (e *enforcer) gone(ctx context.Context, id int64, err error, ownPath bool) bool {
	switch {
	case !refusedForGood(err):
		return false
	case ownPath && !errors.Is(err, smartlead.ErrNotFound):
		return false
	case !ownPath:
		if _, rerr := e.sl.DailyLimit(ctx, id); !errors.Is(rerr, smartlead.ErrNotFound) {
			return false
		}
	}
	return e.sl.Reachable(ctx) == nil
}

// accountGone ends the pause record of an account that Smartlead no longer has: nothing is left to undo,
// and the mailbox no longer holds a place under the safety limit. It records the call that found it
// (op, cause), saves, and returns errAccountGone.
func (e *enforcer) accountGone(ctx context.Context, op string, cause error) error {
	st := &e.mb.Status.Smartlead
	endPause(st)
	st.AccountGone = true
	if err := e.attempt(ctx, op, cause); err != cause { //nolint:errorlint // identity: only a failed save stops
		return err
	}
	return errAccountGone
}

// endPause forgets a pause: what it did, how, and the credentials to undo it.
func endPause(st *bgv1.SmartleadState) {
	st.Paused, st.Reason, st.Action, st.PausedAt = false, "", "", nil
	st.Suspended, st.SuspendRequested, st.OriginalDailyLimit, st.DailyLimitZeroed = false, false, nil, false
	st.RemovedCampaignIDs, st.RefusedCampaignIDs, st.Reapplied = nil, nil, false
	st.APIKeySecretRef, st.BaseURL = nil, ""
}

// skipCampaign records a campaign that no longer exists in Smartlead (404) or refused the account for good
// (an archived campaign): it is skipped, listed in status.smartlead.skippedCampaignIDs for a person, and
// reported in a Warning Event.
func (e *enforcer) skipCampaign(cid int64, op string, cause error) {
	st := &e.mb.Status.Smartlead
	st.SkippedCampaignIDs = append(slices.DeleteFunc(st.SkippedCampaignIDs, func(c int64) bool { return c == cid }), cid)
	if n := len(st.SkippedCampaignIDs); n > maxSkipped {
		st.SkippedCampaignIDs = st.SkippedCampaignIDs[n-maxSkipped:]
	}
	if e.report == nil {
		return
	}
	if errors.Is(cause, smartlead.ErrNotFound) {
		e.report(bgv1.EventCampaignGone, fmt.Sprintf("campaign %d no longer exists in Smartlead (404): skipped while %s account %d; "+
			"the rest went on", cid, op, st.AccountID))
		return
	}
	e.report(bgv1.EventCampaignRefused, fmt.Sprintf("campaign %d refused for good while %s account %d (%s): skipped, the rest went "+
		"on; listed in status.smartlead.skippedCampaignIDs for a person to look at", cid, op, st.AccountID, truncate(cause.Error(), 256)))
}

// maxSkipped bounds status.smartlead.skippedCampaignIDs.
const maxSkipped = 20

// attempt records the outcome of one operation.
func (e *enforcer) attempt(ctx context.Context, op string, err error) error {
	st := &e.mb.Status.Smartlead
	st.LastOperation = op
	st.LastAttemptAt = &metav1.Time{Time: e.now}
	st.LastError = ""
	if err != nil {
		st.LastError = truncate(err.Error(), 1024)
	}
	if serr := e.save(ctx); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// accountID returns the Smartlead account id: from the spec, from status, or resolved by email.
func (e *enforcer) accountID(ctx context.Context) (int64, error) {
	st := &e.mb.Status.Smartlead
	if e.mb.Spec.SmartleadAccountID != nil {
		st.AccountID = *e.mb.Spec.SmartleadAccountID
		return st.AccountID, nil
	}
	if st.AccountID != 0 {
		return st.AccountID, nil
	}
	if acc := e.mb.Status.Account; acc != nil && acc.ID != 0 && !acc.Missing {
		st.AccountID = acc.ID // as the account sync found it by address
		return acc.ID, nil
	}
	id, err := e.sl.FindAccountID(ctx, e.mb.Spec.Email)
	if err == nil {
		st.AccountID = id
	}
	if errors.Is(err, smartlead.ErrNotFound) {
		// No account sends as this address: nothing to pause, nothing left to undo.
		return 0, e.accountGone(ctx, operationResolveAccount, err)
	}
	return id, e.attempt(ctx, operationResolveAccount, err)
}

// suspend suspends the account, its intent recorded first: status.smartlead.suspendRequested is saved before
// the call, so that a suspend that takes effect but whose answer is lost is undone by the resume all the same.
func (e *enforcer) suspend(ctx context.Context, id int64) error {
	st := &e.mb.Status.Smartlead
	if !st.SuspendRequested {
		st.SuspendRequested = true
		if err := e.save(ctx); err != nil {
			return err
		}
	}
	err := e.sl.Suspend(ctx, id)
	if err != nil && e.gone(ctx, id, err, false) {
		return e.accountGone(ctx, operationSuspend, err)
	}
	st.Suspended = err == nil
	return e.attempt(ctx, operationSuspend, err)
}

// pause pauses the mailbox in Smartlead with the policy's action, resuming a half-done pause as it was
// begun. It never stops half-way: a campaign that no longer exists is skipped, and a step that fails for
// good (a campaign removal, the campaign list, the daily limit) leaves the account suspended instead, so
// that it stops sending all the same. What the pause will do is recorded before the call that does it.
// An account that Smartlead no longer has ends the pause record (errAccountGone).
func (e *enforcer) pause(ctx context.Context, action bgv1.PauseAction, reason string) error {
	st := &e.mb.Status.Smartlead
	id, err := e.accountID(ctx)
	if err != nil {
		return err
	}
	// fallback is the step that failed for good, for which the account is suspended instead.
	var fallback error
	fallbackOp := ""
	insteadOf := func(op, reason, what string, err error) {
		fallback, fallbackOp = err, op
		if e.report != nil {
			e.report(reason, fmt.Sprintf("%s failed (%s); the account is suspended instead", what, truncate(err.Error(), 256)))
		}
	}
	if st.Action == "" {
		st.Action = action
		st.SkippedCampaignIDs, st.Reapplied, st.AccountGone = nil, false, false
		// The credentials that pause are the ones that resume, whatever becomes of the policy.
		st.APIKeySecretRef, st.BaseURL = e.creds.APIKeySecretRef.DeepCopy(), e.creds.BaseURL
		if strings.TrimRight(st.BaseURL, "/") == smartlead.DefaultBaseURL {
			st.BaseURL = "" // the same API, in fewer bytes of a bounded status
		}
		if action == bgv1.PauseActionRemoveFromCampaigns {
			ids, err := e.sl.Campaigns(ctx, id)
			st.RemovedCampaignIDs = ids
			switch {
			case err == nil:
			case e.gone(ctx, id, err, true):
				return e.accountGone(ctx, operationGetCampaigns, err)
			case e.refused(ctx, err):
				insteadOf(operationGetCampaigns, bgv1.EventPauseStepFailed, fmt.Sprintf("listing account %d's campaigns", id), err)
			default:
				st.Action = ""
				return e.attempt(ctx, operationGetCampaigns, err)
			}
			// Recorded before the first removal, so that exactly these are restored, whatever happens next.
			if err := e.attempt(ctx, operationGetCampaigns, nil); err != nil {
				return err
			}
		}
	}
	if st.Action == bgv1.PauseActionZeroDailyLimit {
		if st.OriginalDailyLimit == nil {
			limit, err := e.sl.DailyLimit(ctx, id)
			switch {
			case err == nil:
				st.OriginalDailyLimit = &limit
			case e.gone(ctx, id, err, true):
				return e.accountGone(ctx, operationReadDailyLimit, err)
			case e.refused(ctx, err):
				insteadOf(operationReadDailyLimit, bgv1.EventPauseStepFailed, fmt.Sprintf("reading account %d's daily limit", id), err)
			}
			// Recorded before the write: a crash between the two never loses the value to restore.
			if fallback == nil {
				if err := e.attempt(ctx, operationReadDailyLimit, err); err != nil {
					return err
				}
			}
		}
		if fallback == nil && !st.DailyLimitZeroed {
			err := e.sl.SetDailyLimit(ctx, id, 0)
			switch {
			case err == nil:
				st.DailyLimitZeroed = true
			case e.gone(ctx, id, err, true):
				return e.accountGone(ctx, operationZeroDailyLimit, err)
			case e.refused(ctx, err):
				// Not changed: nothing to restore.
				st.OriginalDailyLimit = nil
				insteadOf(operationZeroDailyLimit, bgv1.EventPauseStepFailed, fmt.Sprintf("setting account %d's daily limit to 0", id), err)
			}
			if fallback == nil {
				if err := e.attempt(ctx, operationZeroDailyLimit, err); err != nil {
					return err
				}
			}
		}
	}
	if st.Action == bgv1.PauseActionRemoveFromCampaigns && !st.Suspended && fallback == nil {
		for _, cid := range slices.Clone(st.RemovedCampaignIDs) {
			err := e.sl.RemoveFromCampaign(ctx, cid, id)
			switch {
			case err == nil:
			case errors.Is(err, smartlead.ErrLastAccount):
				// Not removed, so not to be restored; the account is suspended below instead.
				st.RemovedCampaignIDs = slices.DeleteFunc(st.RemovedCampaignIDs, func(c int64) bool { return c == cid })
				st.RefusedCampaignIDs = append(st.RefusedCampaignIDs, cid)
				err = nil
			case e.gone(ctx, id, err, false):
				return e.accountGone(ctx, operationRemoveFromCampaigns+" "+strconv.FormatInt(cid, 10), err)
			case errors.Is(err, smartlead.ErrNotFound) && e.refused(ctx, err): // the campaign is gone, not the whole API
				st.RemovedCampaignIDs = slices.DeleteFunc(st.RemovedCampaignIDs, func(c int64) bool { return c == cid })
				e.skipCampaign(cid, "removing", err)
				err = nil
			default:
				// Kept in RemovedCampaignIDs: restoring an account that is still in a campaign is harmless,
				// and the removal may have happened before the answer was lost.
				insteadOf(operationRemoveFromCampaigns, bgv1.EventCampaignRemoveFailed, fmt.Sprintf("removing account %d from campaign %d", id, cid), err)
			}
			if serr := e.attempt(ctx, operationRemoveFromCampaigns+" "+strconv.FormatInt(cid, 10), err); serr != nil && serr != err { //nolint:errorlint // identity: only a failed save stops
				return serr
			}
		}
	}
	needSuspend := st.SuspendRequested || st.Action == bgv1.PauseActionSuspend || len(st.RefusedCampaignIDs) > 0 || fallback != nil
	if needSuspend && !st.Suspended {
		if err := e.suspend(ctx, id); err != nil {
			return err
		}
	}
	st.Paused, st.Reason = true, reason
	st.PausedAt = &metav1.Time{Time: e.now}
	// The account has stopped sending: the pause is done. A failed step stays on record (lastError).
	op, outcome := string(st.Action), error(nil)
	if fallback != nil {
		op, outcome = fallbackOp, fmt.Errorf("suspended instead: %w", fallback)
	}
	if err := e.attempt(ctx, op, outcome); err != nil && err != outcome { //nolint:errorlint // identity: only a failed save stops
		return err
	}
	return nil
}

// resume undoes exactly what pause did, never stopping half-way: it restores the daily limit it zeroed,
// unsuspends what it suspended or tried to, then restores the campaigns it removed (Smartlead adds only
// accounts that are not suspended). A step refused for good (an archived campaign) is skipped and reported,
// and the others still run; an account that Smartlead no longer has ends the pause record (errAccountGone).
// 429, 5xx and calls that got no answer return their error, to be retried.
func (e *enforcer) resume(ctx context.Context) error {
	st := &e.mb.Status.Smartlead
	id := st.AccountID
	if id == 0 && holdsPause(st) {
		var err error
		if id, err = e.accountID(ctx); err != nil {
			return err
		}
	}
	if st.OriginalDailyLimit != nil {
		// Restored whether or not the zeroing was recorded as done: it may have landed before a crash.
		limit := *st.OriginalDailyLimit
		err := e.sl.SetDailyLimit(ctx, id, limit)
		switch {
		case err == nil:
		case e.gone(ctx, id, err, true):
			return e.accountGone(ctx, operationRestoreDailyLimit, err)
		case e.refused(ctx, err):
			if e.report != nil {
				e.report(bgv1.EventDailyLimitRefused, fmt.Sprintf("Smartlead refused to restore account %d's daily limit to %d (%s): "+
					"skipped, the rest of the resume went on; set it to %d by hand", id, limit, truncate(err.Error(), 256), limit))
			}
			err = nil
		}
		if err == nil {
			st.OriginalDailyLimit, st.DailyLimitZeroed = nil, false
		}
		if err := e.attempt(ctx, operationRestoreDailyLimit, err); err != nil {
			return err
		}
	}
	// A pause that tried to suspend is undone whether or not its answer came: unsuspending is idempotent.
	if st.Suspended || st.SuspendRequested || st.Action == bgv1.PauseActionSuspend {
		err := e.sl.Unsuspend(ctx, id)
		if err != nil && e.gone(ctx, id, err, false) {
			return e.accountGone(ctx, operationUnsuspend, err)
		}
		if err == nil {
			st.Suspended, st.SuspendRequested = false, false
		}
		if err := e.attempt(ctx, operationUnsuspend, err); err != nil {
			return err
		}
	}
	for len(st.RemovedCampaignIDs) > 0 {
		cid := st.RemovedCampaignIDs[0]
		op := operationRestoreCampaigns + " " + strconv.FormatInt(cid, 10)
		err := e.sl.AddToCampaign(ctx, cid, id)
		if err != nil && e.gone(ctx, id, err, false) {
			return e.accountGone(ctx, op, err)
		}
		if e.refused(ctx, err) {
			// Deleted or archived while the account was paused: skipped; the rest of the resume goes on.
			e.skipCampaign(cid, "restoring", err)
			err = nil
		}
		if err == nil {
			st.RemovedCampaignIDs = st.RemovedCampaignIDs[1:]
		}
		if err := e.attempt(ctx, op, err); err != nil {
			return err
		}
	}
	endPause(st)
	return e.attempt(ctx, operationResume, nil)
}

// reapply pauses again an account that Smartlead shows sending while bounceguard holds it paused: it redoes
// what the pause did and someone undid — suspends it, zeroes its daily limit (keeping the limit read before
// the pause, which a resume restores), takes it out of the removed campaigns it is back in — and records
// that this pause was reapplied, so that a second drift is reported, not fought.
func (e *enforcer) reapply(ctx context.Context) error {
	st, acc := &e.mb.Status.Smartlead, e.mb.Status.Account
	id := st.AccountID
	if st.Suspended && !acc.Suspended {
		err := e.sl.Suspend(ctx, id)
		if err != nil && e.gone(ctx, id, err, false) {
			return e.accountGone(ctx, operationSuspend, err)
		}
		if err := e.attempt(ctx, operationSuspend, err); err != nil {
			return err
		}
	}
	if st.DailyLimitZeroed && acc.DailyLimit > 0 {
		err := e.sl.SetDailyLimit(ctx, id, 0)
		if err != nil && e.gone(ctx, id, err, true) {
			return e.accountGone(ctx, operationZeroDailyLimit, err)
		}
		if err := e.attempt(ctx, operationZeroDailyLimit, err); err != nil {
			return err
		}
	}
	if acc.BackInCampaigns > 0 {
		campaigns, err := e.sl.Campaigns(ctx, id)
		if err != nil && e.gone(ctx, id, err, true) {
			return e.accountGone(ctx, operationGetCampaigns, err)
		}
		if err := e.attempt(ctx, operationGetCampaigns, err); err != nil {
			return err
		}
		for _, cid := range campaigns {
			if !slices.Contains(st.RemovedCampaignIDs, cid) {
				continue // a campaign it was never removed from: not bounceguard's to touch
			}
			err := e.sl.RemoveFromCampaign(ctx, cid, id)
			switch {
			case errors.Is(err, smartlead.ErrLastAccount):
				// Smartlead will not empty an ACTIVE campaign: the account is suspended instead.
				if !slices.Contains(st.RefusedCampaignIDs, cid) {
					st.RefusedCampaignIDs = append(st.RefusedCampaignIDs, cid)
				}
				err = nil
				if !st.Suspended {
					if err := e.suspend(ctx, id); err != nil {
						return err
					}
				}
			case err == nil:
			case e.gone(ctx, id, err, false):
				return e.accountGone(ctx, fmt.Sprintf("%s %d", operationRemoveFromCampaigns, cid), err)
			case errors.Is(err, smartlead.ErrNotFound) && e.refused(ctx, err): // the campaign is gone, not the whole API
				err = nil // gone meanwhile: nothing to remove
			case e.refused(ctx, err):
				// Refused for good (an archived campaign): the account is suspended instead, as a pause does.
				if e.report != nil {
					e.report(bgv1.EventCampaignRemoveFailed, fmt.Sprintf("removing account %d from campaign %d failed (%s); "+
						"the account is suspended instead", id, cid, truncate(err.Error(), 256)))
				}
				err = nil
				if !st.Suspended {
					if err := e.suspend(ctx, id); err != nil {
						return err
					}
				}
			}
			if err := e.attempt(ctx, fmt.Sprintf("%s %d", operationRemoveFromCampaigns, cid), err); err != nil {
				return err
			}
		}
	}
	st.Reapplied = true
	return e.attempt(ctx, operationReapply, nil)
}

// accountGoneMessage says that Smartlead no longer has a mailbox's account, and what became of its pause.
func accountGoneMessage(mb *bgv1.Mailbox) string {
	sl := &mb.Status.Smartlead
	return fmt.Sprintf("Smartlead has %s (deleted there?): the pause record ended, as nothing is left to undo, and no "+
		"call is made for the mailbox until a new pause begins or an account sync finds another account (%s: %s)",
		goneAccount(mb), sl.LastOperation, truncate(sl.LastError, 256))
}

// goneAccount names the account that Smartlead no longer has: "no account 4711 any more", or "no account
// with the address ..." when it was never found.
func goneAccount(mb *bgv1.Mailbox) string {
	if id := mb.Status.Smartlead.AccountID; id != 0 {
		return fmt.Sprintf("no account %d any more", id)
	}
	return "no account with the address " + mb.Spec.Email
}

// holdsPause reports whether bounceguard has paused (or begun pausing) the mailbox in Smartlead.
func holdsPause(st *bgv1.SmartleadState) bool {
	return st.Paused || st.Action != "" || st.Suspended || st.SuspendRequested || len(st.RemovedCampaignIDs) > 0 ||
		st.OriginalDailyLimit != nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
