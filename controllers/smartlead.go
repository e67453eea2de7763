package controllers

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/bounceguard/bounceguard/smartlead"
)

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

// Smartlead operations recorded in status.smartlead.lastOperation.
const (
	opResolve  = "ResolveAccount"
	opSuspend  = "Suspend"
	opRemove   = "RemoveFromCampaigns"
	opRestore  = "RestoreCampaigns"
	opUnsusp   = "Unsuspend"
	opCampaign = "GetCampaigns"
	opReadLim  = "ReadDailyLimit"
	opZeroLim  = "ZeroDailyLimit"
	opRestLim  = "RestoreDailyLimit"
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

// Event reasons of steps skipped during a pause or resume.
const (
	EventCampaignGone         = "CampaignGone"
	EventCampaignRemoveFailed = "CampaignRemovalFailed"
)

// skipCampaign records a campaign that no longer exists in Smartlead: nothing to remove or restore.
func (e *enforcer) skipCampaign(cid int64, op string) {
	st := &e.mb.Status.Smartlead
	st.SkippedCampaignIDs = append(slices.DeleteFunc(st.SkippedCampaignIDs, func(c int64) bool { return c == cid }), cid)
	if n := len(st.SkippedCampaignIDs); n > maxSkipped {
		st.SkippedCampaignIDs = st.SkippedCampaignIDs[n-maxSkipped:]
	}
	if e.report != nil {
		e.report(EventCampaignGone, fmt.Sprintf("campaign %d no longer exists in Smartlead (404): skipped while %s account %d; "+
			"the rest went on", cid, op, st.AccountID))
	}
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
	return id, e.attempt(ctx, opResolve, err)
}

// pause pauses the mailbox in Smartlead with the policy's action, resuming a half-done pause as it was
// begun. It never stops half-way: a campaign that no longer exists is skipped, and a campaign removal
// that fails leaves the account suspended instead, so that it stops sending all the same.
func (e *enforcer) pause(ctx context.Context, action bgv1.PauseAction, reason string) error {
	st := &e.mb.Status.Smartlead
	id, err := e.accountID(ctx)
	if err != nil {
		return err
	}
	if st.Action == "" {
		st.Action = action
		st.SkippedCampaignIDs, st.Reapplied = nil, false
		// The credentials that pause are the ones that resume, whatever becomes of the policy.
		st.APIKeySecretRef, st.BaseURL = e.creds.APIKeySecretRef.DeepCopy(), e.creds.BaseURL
		if strings.TrimRight(st.BaseURL, "/") == smartlead.DefaultBaseURL {
			st.BaseURL = "" // the same API, in fewer bytes of a bounded status
		}
		if action == bgv1.PauseActionRemoveFromCampaigns {
			ids, err := e.sl.Campaigns(ctx, id)
			st.RemovedCampaignIDs = ids
			if err != nil {
				st.Action = ""
				return e.attempt(ctx, opCampaign, err)
			}
			// Recorded before the first removal, so that exactly these are restored, whatever happens next.
			if err := e.attempt(ctx, opCampaign, nil); err != nil {
				return err
			}
		}
	}
	if st.Action == bgv1.PauseActionZeroDailyLimit {
		if st.OriginalDailyLimit == nil {
			limit, err := e.sl.DailyLimit(ctx, id)
			if err == nil {
				st.OriginalDailyLimit = &limit
			}
			// Recorded before the write: a crash between the two never loses the value to restore.
			if err := e.attempt(ctx, opReadLim, err); err != nil {
				return err
			}
		}
		if !st.DailyLimitZeroed {
			err := e.sl.SetDailyLimit(ctx, id, 0)
			st.DailyLimitZeroed = err == nil
			if err := e.attempt(ctx, opZeroLim, err); err != nil {
				return err
			}
		}
	}
	var removalFailed error
	if st.Action == bgv1.PauseActionRemoveFromCampaigns && !st.Suspended {
		for _, cid := range slices.Clone(st.RemovedCampaignIDs) {
			err := e.sl.RemoveFromCampaign(ctx, cid, id)
			switch {
			case errors.Is(err, smartlead.ErrLastAccount):
				// Not removed, so not to be restored; the account is suspended below instead.
				st.RemovedCampaignIDs = slices.DeleteFunc(st.RemovedCampaignIDs, func(c int64) bool { return c == cid })
				st.RefusedCampaignIDs = append(st.RefusedCampaignIDs, cid)
				err = nil
			case errors.Is(err, smartlead.ErrNotFound):
				st.RemovedCampaignIDs = slices.DeleteFunc(st.RemovedCampaignIDs, func(c int64) bool { return c == cid })
				e.skipCampaign(cid, "removing")
				err = nil
			case err != nil:
				// Kept in RemovedCampaignIDs: restoring an account that is still in a campaign is harmless,
				// and the removal may have happened before the answer was lost.
				removalFailed = err
				if e.report != nil {
					e.report(EventCampaignRemoveFailed, fmt.Sprintf("removing account %d from campaign %d failed (%s); "+
						"the account is suspended instead", id, cid, truncate(err.Error(), 256)))
				}
			}
			if serr := e.attempt(ctx, opRemove+" "+strconv.FormatInt(cid, 10), err); serr != nil && serr != err { //nolint:errorlint // identity: only a failed save stops
				return serr
			}
		}
	}
	needSuspend := st.Action == bgv1.PauseActionSuspend || len(st.RefusedCampaignIDs) > 0 || removalFailed != nil
	if needSuspend && !st.Suspended {
		err := e.sl.Suspend(ctx, id)
		st.Suspended = err == nil
		if err := e.attempt(ctx, opSuspend, err); err != nil {
			return err
		}
	}
	st.Paused, st.Reason = true, reason
	st.PausedAt = &metav1.Time{Time: e.now}
	// The account has stopped sending: the pause is done. A failed removal stays on record (lastError).
	op, outcome := string(st.Action), error(nil)
	if removalFailed != nil {
		op, outcome = opRemove, fmt.Errorf("suspended instead: %w", removalFailed)
	}
	if err := e.attempt(ctx, op, outcome); err != nil && err != outcome { //nolint:errorlint // identity: only a failed save stops
		return err
	}
	return nil
}

// resume undoes exactly what pause did: restores the campaigns it removed and unsuspends what it suspended.
func (e *enforcer) resume(ctx context.Context) error {
	st := &e.mb.Status.Smartlead
	id := st.AccountID
	if id == 0 && (st.Suspended || len(st.RemovedCampaignIDs) > 0 || st.OriginalDailyLimit != nil) {
		var err error
		if id, err = e.accountID(ctx); err != nil {
			return err
		}
	}
	for len(st.RemovedCampaignIDs) > 0 {
		cid := st.RemovedCampaignIDs[0]
		err := e.sl.AddToCampaign(ctx, cid, id)
		if errors.Is(err, smartlead.ErrNotFound) {
			// Deleted while the account was paused: nothing to restore; the rest of the resume goes on.
			e.skipCampaign(cid, "restoring")
			err = nil
		}
		if err == nil {
			st.RemovedCampaignIDs = st.RemovedCampaignIDs[1:]
		}
		if err := e.attempt(ctx, opRestore+" "+strconv.FormatInt(cid, 10), err); err != nil {
			return err
		}
	}
	if st.OriginalDailyLimit != nil {
		// Restored whether or not the zeroing was recorded as done: it may have landed before a crash.
		err := e.sl.SetDailyLimit(ctx, id, *st.OriginalDailyLimit)
		if err == nil {
			st.OriginalDailyLimit, st.DailyLimitZeroed = nil, false
		}
		if err := e.attempt(ctx, opRestLim, err); err != nil {
			return err
		}
	}
	if st.Suspended {
		err := e.sl.Unsuspend(ctx, id)
		st.Suspended = err != nil
		if err := e.attempt(ctx, opUnsusp, err); err != nil {
			return err
		}
	}
	st.Paused, st.Reason, st.Action, st.PausedAt, st.RemovedCampaignIDs, st.RefusedCampaignIDs = false, "", "", nil, nil, nil
	st.Reapplied = false
	st.APIKeySecretRef, st.BaseURL = nil, ""
	return e.attempt(ctx, "Resume", nil)
}

// holdsPause reports whether bounceguard has paused (or begun pausing) the mailbox in Smartlead.
func holdsPause(st *bgv1.SmartleadState) bool {
	return st.Paused || st.Action != "" || st.Suspended || len(st.RemovedCampaignIDs) > 0 || st.OriginalDailyLimit != nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
