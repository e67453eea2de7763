package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead"
)

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

// Urgency of the Smartlead calls of one carryOut: a drift reapply waits behind every pause and resume of
// its key, a pause or resume behind nothing; the account sync's reads wait behind both (syncPriority).
func callPriority(ctx context.Context, reapply bool) context.Context {
	if reapply {
		return smartlead.WithPriority(ctx, smartlead.PriorityReapply)
	}
	return smartlead.WithPriority(ctx, smartlead.PriorityEnforce)
}
