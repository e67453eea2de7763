package controllers

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
)

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
		setCondition(conds, gen, bgv1.ConditionAccountFound, false, bgv1.ReasonAccountMissing,
			"Smartlead answered that it has "+goneAccount(mb)+" (deleted there?): bounceguard's pause record ended, "+
				"as nothing is left to undo; no call is made until a new pause begins or another account is found")
	case acc != nil && acc.Missing:
		what := "its address " + mb.Spec.Email
		if acc.ID != 0 {
			what = "account " + strconv.FormatInt(acc.ID, 10)
		}
		setCondition(conds, gen, bgv1.ConditionAccountFound, false, bgv1.ReasonAccountMissing,
			"the last account sync found no Smartlead account for "+what+": deleted, or under another API key?")
	case acc != nil && meta.FindStatusCondition(*conds, bgv1.ConditionAccountFound) != nil:
		setCondition(conds, gen, bgv1.ConditionAccountFound, true, bgv1.ReasonAccountFound,
			"Smartlead account "+strconv.FormatInt(acc.ID, 10))
	case acc == nil:
		meta.RemoveStatusCondition(conds, bgv1.ConditionAccountFound) // no sync has read it: nothing to say
	}

	held := holdsPause(&st.Smartlead)
	if drifted, how := protection.Drift(&st.Smartlead, acc); drifted {
		reason, msg := bgv1.ReasonSendingAgain, how
		switch {
		case st.Smartlead.Reapplied:
			reason, msg = bgv1.ReasonReapplied, how+"; paused again (once a pause: a further drift is left to a person)"
		case drift == bgv1.DriftReapply:
			msg += "; pausing it again (drift: Reapply)"
		default:
			msg += "; left to a person (drift: Report): pause it in Smartlead, or resume it here (" + bgv1.AnnotationResume + ")"
		}
		setCondition(conds, gen, bgv1.ConditionDrifted, true, reason, msg)
	} else if held && st.Smartlead.Paused && meta.FindStatusCondition(*conds, bgv1.ConditionDrifted) != nil {
		setCondition(conds, gen, bgv1.ConditionDrifted, false, bgv1.ReasonInStep, "Smartlead shows it paused")
	} else if !held {
		meta.RemoveStatusCondition(conds, bgv1.ConditionDrifted)
	}

	switch {
	case held:
		meta.RemoveStatusCondition(conds, bgv1.ConditionUnmonitored)
	case acc != nil && acc.Gap != nil:
		setCondition(conds, gen, bgv1.ConditionUnmonitored, true, bgv1.ReasonCoverageGap, protection.CoverageMessage(acc.Gap))
	case meta.FindStatusCondition(*conds, bgv1.ConditionUnmonitored) != nil:
		setCondition(conds, gen, bgv1.ConditionUnmonitored, false, bgv1.ReasonCovered, "bounceguard receives its sends")
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
	{bgv1.ConditionAccountFound, metav1.ConditionFalse, bgv1.EventAccountMissing, ""},
	{bgv1.ConditionDrifted, metav1.ConditionTrue, bgv1.EventDrifted, bgv1.NotifyDrift},
	{bgv1.ConditionUnmonitored, metav1.ConditionTrue, bgv1.EventUnmonitored, bgv1.NotifyUnmonitored},
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
