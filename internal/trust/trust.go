// Package trust decides which policies' verdicts a mailbox may follow: a policy that authenticates its
// webhooks (a webhook secret) moves what only authenticated webhooks can, and a Domain counted from
// unauthenticated webhooks must not pause a mailbox of such a policy. The receiver, its gate and the
// Domain controller share these rules.
package trust

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// FollowsDomain reports whether a mailbox of policy follows the health of domain (a domain pause, the
// gate's domain reason). A mailbox of a policy that authenticates its webhooks (a webhook secret) follows
// only a Domain whose own policy does too: a Domain of a policy without one counts Mailboxes that anyone
// who knows its organization id can create and bounce, and its verdict must not pause — in Smartlead or
// at the gate — a mailbox that only authenticated webhooks can move. A missing Domain policy is followed
// by no signed mailbox.
func FollowsDomain(ctx context.Context, c client.Reader, policy *bgv1.ProtectionPolicy, domain *bgv1.Domain) (bool, error) {
	if policy == nil || policy.Spec.Smartlead.WebhookSecretRef == nil {
		return true, nil
	}
	name := domain.PolicyName()
	if name == policy.Name && domain.Namespace == policy.Namespace {
		return true, nil
	}
	return PolicyAuthenticates(ctx, c, domain.Namespace, name)
}

// PolicyAuthenticates reports whether the policy namespace/name exists and authenticates its webhooks
// (has a webhook secret). A policy without one accepts events from anyone who knows its organization id,
// and a missing one authenticates nothing: neither may move what only authenticated webhooks can.
func PolicyAuthenticates(ctx context.Context, c client.Reader, namespace, name string) (bool, error) {
	var p bgv1.ProtectionPolicy
	switch err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &p); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return p.Spec.Smartlead.WebhookSecretRef != nil, nil
}
