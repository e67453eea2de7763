package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// enforceByHand is enforce as it decided the Smartlead step by hand, before protection.SmartleadStep:
// the reference TestEnforceDecidesAsItDidByHand holds enforce to.
func (r *MailboxReconciler) enforceByHand(ctx context.Context, mb *bgv1.Mailbox, policy *bgv1.ProtectionPolicy,
	rules protection.Rules, domainHealth bgv1.Health) action {
	var a action
	a.want, a.reason = protection.WantPaused(rules.Mode, mb.Status.Health, domainHealth)
	a.reason = ownReason(mb, a.reason)
	sl := &mb.Status.Smartlead
	key := client.ObjectKeyFromObject(mb)
	if sl.AccountGone && (anotherAccount(mb) || pausedSince(mb, sl.LastAttemptAt)) {
		if mb.Spec.SmartleadAccountID == nil {
			sl.AccountID = 0
		}
		sl.AccountGone = false
	}
	switch {
	case a.want && sl.AccountGone && !holdsPause(sl):
		a.gone = "Smartlead no longer has its account"
		return a
	case a.want && sl.Paused:
		sl.Reason = a.reason
		if !needsReapply(mb, policy) {
			return a
		}
	case !a.want && !holdsPause(sl):
		r.notePaused(key, false)
		return a
	case a.want && !holdsPause(sl) && a.reason != bgv1.ReasonHold:
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

// enforce decides through protection.SmartleadStep exactly as it decided by hand: for every combination of
// mode, own and domain health, what status.smartlead holds (paused, part of a pause, account gone, another
// account named, a pause begun since), a drift due for reapply, the safety limit, the API key and a
// reservation under the limit, the action, the status it leaves, the reservations, the Events and the
// notifications are the same.
func TestEnforceDecidesAsItDidByHand(t *testing.T) {
	ctx := context.Background()
	t0 := metav1.NewTime(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	type provider struct {
		name string
		p    SmartleadProvider
	}
	providers := []provider{{"key", okProvider{}}, {"no key", failingProvider{fmt.Errorf("%w: Secret not found", ErrNoAPIKey)}},
		{"error", failingProvider{errors.New("connection refused")}}}
	cases := 0
	for _, holdsLimit := range []bool{false, true} {
		policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns"},
			Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{
				APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
				WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"},
				Sync:             bgv1.SyncSettings{Drift: bgv1.DriftReapply}}}}
		if holdsLimit {
			policy.Spec.Safety = bgv1.SafetyRules{MaxPausedPercent: 10}
		}
		stored := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "ns"},
			Spec: bgv1.MailboxSpec{Email: "ann@acme.com", PolicyRef: bgv1.LocalPolicyReference{Name: "default"}}}
		b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, stored)
		for _, ix := range index.Indexes {
			b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
		}
		c := b.Build()
		for _, mode := range []bgv1.Mode{bgv1.ModeEnforce, bgv1.ModeObserve} {
			policy.Spec.Mode = mode
			rules := protection.RulesFor(policy)
			for _, own := range []struct {
				health bgv1.Health
				reason string
			}{
				{bgv1.HealthHealthy, bgv1.ReasonHealthy}, {bgv1.HealthPaused, bgv1.ReasonBounceThreshold}, {bgv1.HealthPaused, bgv1.ReasonHold}} {
				for _, domain := range []bgv1.Health{"", bgv1.HealthPaused} {
					for bits := range 1 << 7 {
						paused, suspended, gone, another, drift, newPause, reserved :=
							bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0, bits&16 != 0, bits&32 != 0, bits&64 != 0
						mb := stored.DeepCopy()
						mb.Status.Health, mb.Status.HealthReason = own.health, own.reason
						sl := &mb.Status.Smartlead
						sl.AccountID, sl.Paused, sl.Suspended, sl.AccountGone = 7, paused, suspended, gone
						if paused {
							sl.PausedAt = &t0
						}
						if another {
							mb.Spec.SmartleadAccountID = ptr.To[int64](9)
						}
						sl.LastAttemptAt = &t1
						if newPause {
							mb.Status.PausedAt = &t1
							sl.LastAttemptAt = &t0
						}
						if drift {
							mb.Status.Account = &bgv1.AccountState{ID: 7, PausedAt: &t0, BackInCampaigns: 1}
						}
						for _, p := range providers {
							cases++
							name := fmt.Sprintf("limit %v, %s, own %s/%s, domain %q, paused %v, suspended %v, gone %v, another %v, drift %v, new pause %v, reserved %v, %s",
								holdsLimit, mode, own.health, own.reason, domain, paused, suspended, gone, another, drift, newPause, reserved, p.name)
							run := func(byHand bool) (action, bgv1.MailboxStatus, map[types.NamespacedName]bool, []string, int) {
								rec := events.NewFakeRecorder(10)
								n := &recordingNotifier{}
								r := &MailboxReconciler{Client: c, Recorder: rec, Smartlead: p.p, Notifier: n}
								if reserved {
									r.pausedRecently = map[types.NamespacedName]bool{client.ObjectKeyFromObject(mb): true}
								}
								m := mb.DeepCopy()
								var a action
								if byHand {
									a = r.enforceByHand(ctx, m, policy, rules, domain)
								} else {
									a = r.enforce(ctx, m, policy, rules, domain)
								}
								var evs []string
								for len(rec.Events) > 0 {
									evs = append(evs, <-rec.Events)
								}
								return a, m.Status, maps.Clone(r.pausedRecently), evs, n.count()
							}
							wa, ws, wp, we, wn := run(true)
							ga, gs, gp, ge, gn := run(false)
							errText := func(err error) string {
								if err == nil {
									return ""
								}
								return err.Error()
							}
							if ga.want != wa.want || ga.reason != wa.reason || ga.held != wa.held || ga.unavailable != wa.unavailable ||
								ga.gone != wa.gone || errText(ga.err) != errText(wa.err) || !reflect.DeepEqual(ga.queue, wa.queue) {
								t.Errorf("%s:\naction %+v\n  want %+v", name, ga, wa)
							}
							if !reflect.DeepEqual(gs, ws) {
								t.Errorf("%s:\nstatus %+v\n  want %+v", name, gs.Smartlead, ws.Smartlead)
							}
							if len(gp) != len(wp) || !reflect.DeepEqual(gp, wp) && len(gp) > 0 {
								t.Errorf("%s: reservations %v, want %v", name, gp, wp)
							}
							if !reflect.DeepEqual(ge, we) || gn != wn {
								t.Errorf("%s: Events %q and %d notifications, want %q and %d", name, ge, gn, we, wn)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d cases", cases)
}

// carryOut's step, through protection.SmartleadStep, is the one it decided by hand: none when the pause
// wanted is in force and no drift is due, when no pause is wanted nor held, or when a wanted pause's
// account is gone and nothing is held; else a reapply when a drift is due, a pause when one is wanted, a
// resume when none is. A done pause is always held (holdsPause reads status.smartlead.paused).
func TestCarryOutStepsAsItDidByHand(t *testing.T) {
	for bits := range 1 << 5 {
		want, paused, partly, gone, due := bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0, bits&16 != 0
		holds := paused || partly
		reapply := want && paused && due
		byHand := protection.StepResume
		switch {
		case (want && paused && !reapply) || (!want && !holds) || (want && gone && !holds):
			byHand = protection.StepNone
		case reapply:
			byHand = protection.StepReapply
		case want:
			byHand = protection.StepPause
		}
		in := protection.StepInput{WantPaused: want, Paused: paused, HoldsPause: holds, AccountGone: gone, ReapplyDue: due}
		if got := protection.SmartleadStep(in); got != byHand {
			t.Errorf("%+v: %v, by hand %v", in, got, byHand)
		}
	}
}
