package controllers

import (
	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Notifier announces transitions to a policy's notification targets (Slack, JSON webhooks) and keeps
// their delivery status. The reconcilers call it; the process wiring gives them one (internal/notify's
// Dispatcher), and has it call ProtectionPolicyReconciler.NotificationStatusChanged when a policy's
// delivery status changes.
type Notifier interface {
	// Notify queues n for every target of policy that wants its kind, and returns at once.
	Notify(policy *bgv1.ProtectionPolicy, n bgv1.Notice)
	// Retain lets go of the targets of the policy name that policy's spec no longer names, or of all of
	// them when policy is nil (it was deleted).
	Retain(name types.NamespacedName, policy *bgv1.ProtectionPolicy)
	// Status is the delivery status of each of policy's targets, in spec order.
	Status(policy *bgv1.ProtectionPolicy) []bgv1.NotificationStatus
}

// notifierOr returns n, or a Notifier that announces nothing when n is nil (a reconciler without one).
func notifierOr(n Notifier) Notifier {
	if n == nil {
		return silent{}
	}
	return n
}

// silent is the Notifier of a reconciler given none: it announces nothing and holds no target.
type silent struct{}

func (silent) Notify(*bgv1.ProtectionPolicy, bgv1.Notice)              {}
func (silent) Retain(types.NamespacedName, *bgv1.ProtectionPolicy)     {}
func (silent) Status(*bgv1.ProtectionPolicy) []bgv1.NotificationStatus { return nil }
