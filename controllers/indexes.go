package controllers

import (
	"context"
	"strconv"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Field index names, usable with client.MatchingFields on the manager's cached client.
const (
	// IndexMailboxEmail indexes Mailboxes by spec.email.
	IndexMailboxEmail = "spec.email"
	// IndexMailboxAccountID indexes Mailboxes by spec.smartleadAccountID (decimal).
	IndexMailboxAccountID = "spec.smartleadAccountID"
	// IndexMailboxPolicy indexes Mailboxes by spec.policyRef.name.
	IndexMailboxPolicy = "spec.policyRef.name"
	// IndexMailboxDomain indexes Mailboxes by the domain part of spec.email.
	IndexMailboxDomain = "domain"
	// IndexPolicyOrganization indexes ProtectionPolicies by spec.smartlead.organizationID.
	IndexPolicyOrganization = "spec.smartlead.organizationID"
	// IndexPolicySecret indexes ProtectionPolicies by the names of the Secrets they reference.
	IndexPolicySecret = "secretRefs"
)

// DefaultPolicyName is the policy a Mailbox or Domain without policyRef belongs to.
const DefaultPolicyName = "default"

// PolicyNameOf returns the name of the policy that governs a mailbox.
func PolicyNameOf(mb *bgv1.Mailbox) string {
	if mb.Spec.PolicyRef.Name == "" {
		return DefaultPolicyName
	}
	return mb.Spec.PolicyRef.Name
}

// DomainOf returns the domain part of an email address, or "" when it has none.
func DomainOf(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 || at == len(email)-1 {
		return ""
	}
	return strings.ToLower(email[at+1:])
}

// RegisterIndexes adds bounceguard's field indexes to the manager's cache.
func RegisterIndexes(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	mailboxIndexes := map[string]func(*bgv1.Mailbox) []string{
		IndexMailboxEmail: func(mb *bgv1.Mailbox) []string { return []string{strings.ToLower(mb.Spec.Email)} },
		IndexMailboxAccountID: func(mb *bgv1.Mailbox) []string {
			if mb.Spec.SmartleadAccountID == nil {
				return nil
			}
			return []string{strconv.FormatInt(*mb.Spec.SmartleadAccountID, 10)}
		},
		IndexMailboxPolicy: func(mb *bgv1.Mailbox) []string { return []string{PolicyNameOf(mb)} },
		IndexMailboxDomain: func(mb *bgv1.Mailbox) []string {
			if d := DomainOf(mb.Spec.Email); d != "" {
				return []string{d}
			}
			return nil
		},
	}
	for name, fn := range mailboxIndexes {
		if err := idx.IndexField(ctx, &bgv1.Mailbox{}, name, func(o client.Object) []string {
			return fn(o.(*bgv1.Mailbox))
		}); err != nil {
			return err
		}
	}
	if err := idx.IndexField(ctx, &bgv1.ProtectionPolicy{}, IndexPolicyOrganization, func(o client.Object) []string {
		if id := o.(*bgv1.ProtectionPolicy).Spec.Smartlead.OrganizationID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &bgv1.ProtectionPolicy{}, IndexPolicySecret, func(o client.Object) []string {
		return policySecretNames(o.(*bgv1.ProtectionPolicy))
	})
}

// policySecretNames lists the distinct Secrets a policy references.
func policySecretNames(p *bgv1.ProtectionPolicy) []string {
	var names []string
	for _, ref := range []*bgv1.SecretKeySelector{p.Spec.Smartlead.APIKeySecretRef, p.Spec.Smartlead.WebhookSecretRef} {
		if ref != nil && (len(names) == 0 || names[0] != ref.Name) {
			names = append(names, ref.Name)
		}
	}
	return names
}
