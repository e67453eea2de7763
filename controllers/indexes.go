package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// Field index names, usable with client.MatchingFields on the manager's cached client (the receiver's own
// indexes are named in webhookreceiver).
const (
	// IndexMailboxPolicy indexes Mailboxes by spec.policyRef.name.
	IndexMailboxPolicy = "spec.policyRef.name"
	// IndexMailboxDomain indexes Mailboxes by the domain part of spec.email.
	IndexMailboxDomain = "domain"
	// IndexDomainPolicy indexes Domains by spec.policyRef.name.
	IndexDomainPolicy = "spec.policyRef.name"
	// IndexPolicySecret indexes ProtectionPolicies by the names of the Secrets they reference.
	IndexPolicySecret = "secretRefs"
)

// RegisterIndexes adds bounceguard's field indexes to the manager's cache.
func RegisterIndexes(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	for _, ix := range FieldIndexes() {
		if err := idx.IndexField(ctx, ix.Object, ix.Field, ix.Extract); err != nil {
			return err
		}
	}
	return nil
}

// FieldIndexes lists every field index the reconcilers and the receiver use.
func FieldIndexes() []webhookreceiver.FieldIndex {
	return append([]webhookreceiver.FieldIndex{
		{Object: &bgv1.Mailbox{}, Field: IndexMailboxPolicy, Extract: func(o client.Object) []string {
			return []string{o.(*bgv1.Mailbox).PolicyName()}
		}},
		{Object: &bgv1.Mailbox{}, Field: IndexMailboxDomain, Extract: func(o client.Object) []string {
			if d := o.(*bgv1.Mailbox).Domain(); d != "" {
				return []string{d}
			}
			return nil
		}},
		{Object: &bgv1.Domain{}, Field: IndexDomainPolicy, Extract: func(o client.Object) []string {
			return []string{o.(*bgv1.Domain).PolicyName()}
		}},
		{Object: &bgv1.ProtectionPolicy{}, Field: IndexPolicySecret, Extract: func(o client.Object) []string {
			return policySecretNames(o.(*bgv1.ProtectionPolicy))
		}},
	}, webhookreceiver.Indexes...)
}

// secretRef is a Secret key a policy references, and what it holds (for messages).
type secretRef struct {
	what string
	sel  *bgv1.SecretKeySelector
}

// policySecretRefs lists the Secret keys a policy references: its Smartlead API key and webhook secret,
// its gate token and its notification URLs, where set.
func policySecretRefs(p *bgv1.ProtectionPolicy) []secretRef {
	var refs []secretRef
	for _, r := range []secretRef{{"Smartlead API key", p.Spec.Smartlead.APIKeySecretRef},
		{"Smartlead webhook secret", p.Spec.Smartlead.WebhookSecretRef}, {"gate token", p.Spec.Gate.TokenSecretRef}} {
		if r.sel != nil {
			refs = append(refs, r)
		}
	}
	for i := range p.Spec.Notifications {
		refs = append(refs, secretRef{fmt.Sprintf("notification URL (notifications[%d])", i), &p.Spec.Notifications[i].URLSecretRef})
	}
	return refs
}

// policySecretNames lists the distinct Secrets a policy references.
func policySecretNames(p *bgv1.ProtectionPolicy) []string {
	var names []string
	for _, ref := range policySecretRefs(p) {
		if !slices.Contains(names, ref.sel.Name) {
			names = append(names, ref.sel.Name)
		}
	}
	return names
}

// requestsFor lists the objects of list's type in o's namespace whose index field equals o's name, as
// reconcile requests: the mapping from a policy or domain to what refers to it.
func requestsFor(ctx context.Context, c client.Reader, list client.ObjectList, index string, o client.Object) []reconcile.Request {
	if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
		return nil
	}
	return requestsOf(list)
}

// requestsOf lists the objects of list as reconcile requests.
func requestsOf(list client.ObjectList) []reconcile.Request {
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(items))
	for _, item := range items {
		if obj, ok := item.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	return reqs
}
