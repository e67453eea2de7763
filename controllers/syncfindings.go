package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/smartlead"
)

// Event reasons of what the account sync found, on the Mailbox.
const (
	EventAccountMissing = "AccountNotFound"
	EventDrifted        = "Drifted"
	EventUnmonitored    = "Unmonitored"
	EventReapplied      = "PauseReapplied"
)

// opReapply is recorded in status.smartlead.lastOperation when a drifted pause was applied again.
const opReapply = "Reapply"

// setSyncConditions turns what the last account sync read (status.account), and an account that Smartlead
// answered it no longer has (status.smartlead.accountGone), into the conditions
// AccountFound, Drifted and Unmonitored. Each appears once it has something to say and goes when it has
// nothing left to say: Drifted only while bounceguard holds the account paused, Unmonitored only while it
// does not (a paused mailbox is not expected to send), so that a Mailbox stays within its 4 KiB.
func setSyncConditions(mb *bgv1.Mailbox, drift bgv1.DriftAction) {
	st := &mb.Status
	conds, gen, acc := &st.Conditions, mb.Generation, st.Account
	switch {
	case st.Smartlead.AccountGone:
		setCondition(conds, gen, bgv1.ConditionAccountFound, false, protection.ReasonAccountMissing,
			"Smartlead answered that it has "+goneAccount(mb)+" (deleted there?): bounceguard's pause record ended, "+
				"as nothing is left to undo; no call is made until a new pause begins or another account is found")
	case acc != nil && acc.Missing:
		what := "its address " + mb.Spec.Email
		if acc.ID != 0 {
			what = "account " + strconv.FormatInt(acc.ID, 10)
		}
		setCondition(conds, gen, bgv1.ConditionAccountFound, false, protection.ReasonAccountMissing,
			"the last account sync found no Smartlead account for "+what+": deleted, or under another API key?")
	case acc != nil && meta.FindStatusCondition(*conds, bgv1.ConditionAccountFound) != nil:
		setCondition(conds, gen, bgv1.ConditionAccountFound, true, protection.ReasonAccountFound,
			"Smartlead account "+strconv.FormatInt(acc.ID, 10))
	case acc == nil:
		meta.RemoveStatusCondition(conds, bgv1.ConditionAccountFound) // no sync has read it: nothing to say
	}

	held := holdsPause(&st.Smartlead)
	if drifted, how := protection.Drift(&st.Smartlead, acc); drifted {
		reason, msg := protection.ReasonSendingAgain, how
		switch {
		case st.Smartlead.Reapplied:
			reason, msg = protection.ReasonReapplied, how+"; paused again (once a pause: a further drift is left to a person)"
		case drift == bgv1.DriftReapply:
			msg += "; pausing it again (drift: Reapply)"
		default:
			msg += "; left to a person (drift: Report): pause it in Smartlead, or resume it here (" + bgv1.AnnotationResume + ")"
		}
		setCondition(conds, gen, bgv1.ConditionDrifted, true, reason, msg)
	} else if held && st.Smartlead.Paused && meta.FindStatusCondition(*conds, bgv1.ConditionDrifted) != nil {
		setCondition(conds, gen, bgv1.ConditionDrifted, false, protection.ReasonInStep, "Smartlead shows it paused")
	} else if !held {
		meta.RemoveStatusCondition(conds, bgv1.ConditionDrifted)
	}

	switch {
	case held:
		meta.RemoveStatusCondition(conds, bgv1.ConditionUnmonitored)
	case acc != nil && acc.Gap != nil:
		setCondition(conds, gen, bgv1.ConditionUnmonitored, true, protection.ReasonCoverageGap, protection.CoverageMessage(acc.Gap))
	case meta.FindStatusCondition(*conds, bgv1.ConditionUnmonitored) != nil:
		setCondition(conds, gen, bgv1.ConditionUnmonitored, false, protection.ReasonCovered, "bounceguard receives its sends")
	}
}

// syncFinding is a condition that turned to what a person must hear of: an account gone, a drift, a gap.
type syncFinding struct {
	condition string
	bad       metav1.ConditionStatus
	event     string
	notice    bgv1.NotificationEvent // "": not announced
}

var syncFindings = []syncFinding{
	{bgv1.ConditionAccountFound, metav1.ConditionFalse, EventAccountMissing, ""},
	{bgv1.ConditionDrifted, metav1.ConditionTrue, EventDrifted, bgv1.NotifyDrift},
	{bgv1.ConditionUnmonitored, metav1.ConditionTrue, EventUnmonitored, bgv1.NotifyUnmonitored},
}

// syncFindings sets the account sync's conditions on a reconciled mailbox and returns what to announce of
// them once its write has landed.
func (r *MailboxReconciler) syncFindings(policy *bgv1.ProtectionPolicy, before, after *bgv1.Mailbox) func() {
	setSyncConditions(after, policy.Spec.Smartlead.Sync.Drift)
	return r.announceFindings(policy, before, after)
}

// announceFindings returns what to announce once a reconcile's write has landed: a Warning Event for each
// finding that turned bad between before and after, and a notification for a drift or a gap (grouped by
// the notifier with the others of the same sync).
func (r *MailboxReconciler) announceFindings(policy *bgv1.ProtectionPolicy, before, after *bgv1.Mailbox) func() {
	var fire []func()
	for _, f := range syncFindings {
		was, now := meta.FindStatusCondition(before.Status.Conditions, f.condition), meta.FindStatusCondition(after.Status.Conditions, f.condition)
		if now == nil || now.Status != f.bad || (was != nil && was.Status == f.bad) {
			continue
		}
		msg := now.Message
		fire = append(fire, func() {
			r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, f.event, "Sync", "%s", msg)
			if f.notice != "" {
				notifierOr(r.Notifier).Notify(policy, bgv1.Notice{Event: f.notice, Mailbox: after.Spec.Email, Domain: after.Domain(), Evidence: msg})
			}
		})
	}
	if len(fire) == 0 {
		return nil
	}
	return func() {
		for _, f := range fire {
			f()
		}
	}
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
			return e.accountGone(ctx, opSuspend, err)
		}
		if err := e.attempt(ctx, opSuspend, err); err != nil {
			return err
		}
	}
	if st.DailyLimitZeroed && acc.DailyLimit > 0 {
		err := e.sl.SetDailyLimit(ctx, id, 0)
		if err != nil && e.gone(ctx, id, err, true) {
			return e.accountGone(ctx, opZeroLim, err)
		}
		if err := e.attempt(ctx, opZeroLim, err); err != nil {
			return err
		}
	}
	if acc.BackInCampaigns > 0 {
		campaigns, err := e.sl.Campaigns(ctx, id)
		if err != nil && e.gone(ctx, id, err, true) {
			return e.accountGone(ctx, opCampaign, err)
		}
		if err := e.attempt(ctx, opCampaign, err); err != nil {
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
				return e.accountGone(ctx, fmt.Sprintf("%s %d", opRemove, cid), err)
			case errors.Is(err, smartlead.ErrNotFound) && e.refused(ctx, err): // the campaign is gone, not the whole API
				err = nil // gone meanwhile: nothing to remove
			case e.refused(ctx, err):
				// Refused for good (an archived campaign): the account is suspended instead, as a pause does.
				if e.report != nil {
					e.report(EventCampaignRemoveFailed, fmt.Sprintf("removing account %d from campaign %d failed (%s); "+
						"the account is suspended instead", id, cid, truncate(err.Error(), 256)))
				}
				err = nil
				if !st.Suspended {
					if err := e.suspend(ctx, id); err != nil {
						return err
					}
				}
			}
			if err := e.attempt(ctx, fmt.Sprintf("%s %d", opRemove, cid), err); err != nil {
				return err
			}
		}
	}
	st.Reapplied = true
	return e.attempt(ctx, opReapply, nil)
}
