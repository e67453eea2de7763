// Package index holds bounceguard's field indexes of the manager's cache: their names, usable with
// client.MatchingFields on the cached client, and how each is computed from an object.
package index

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Field index names.
const (
	// MailboxPolicy indexes Mailboxes by spec.policyRef.name.
	MailboxPolicy = "spec.policyRef.name"
	// MailboxDomain indexes Mailboxes by the domain part of spec.email.
	MailboxDomain = "domain"
	// MailboxEmail indexes Mailboxes by spec.email.
	MailboxEmail = "spec.email"
	// MailboxAccountID indexes Mailboxes by their Smartlead account id (decimal): spec.smartleadAccountID,
	// and the ids bounceguard learned when the spec has none: status.smartlead.accountID (a pause) and
	// status.account.id (the account sync).
	MailboxAccountID = "smartleadAccountID"
	// DomainPolicy indexes Domains by spec.policyRef.name.
	DomainPolicy = "spec.policyRef.name"
	// PolicySecret indexes ProtectionPolicies by the names of the Secrets they reference.
	PolicySecret = "secretRefs"
	// PolicyOrganization indexes ProtectionPolicies by spec.smartlead.organizationID.
	PolicyOrganization = "spec.smartlead.organizationID"
	// PolicyGate indexes ProtectionPolicies that have a gate token (value ValueSet).
	PolicyGate = "spec.gate.tokenSecretRef"
)

// ValueSet is the value of presence indexes (PolicyGate).
const ValueSet = "set"

// FieldIndex is one field index of the manager's cache.
type FieldIndex struct {
	// Object is the kind indexed.
	Object client.Object
	// Field is the index name.
	Field string
	// Extract returns the index values of an object.
	Extract client.IndexerFunc
}

// Indexes lists every field index the reconcilers and the receiver use; the manager's cache must register
// them (AddIndexes).
var Indexes = []FieldIndex{
	{&bgv1.Mailbox{}, MailboxPolicy, func(o client.Object) []string {
		return []string{o.(*bgv1.Mailbox).PolicyName()}
	}},
	{&bgv1.Mailbox{}, MailboxDomain, func(o client.Object) []string {
		if d := o.(*bgv1.Mailbox).Domain(); d != "" {
			return []string{d}
		}
		return nil
	}},
	{&bgv1.Domain{}, DomainPolicy, func(o client.Object) []string {
		return []string{o.(*bgv1.Domain).PolicyName()}
	}},
	{&bgv1.ProtectionPolicy{}, PolicySecret, func(o client.Object) []string {
		return o.(*bgv1.ProtectionPolicy).SecretNames()
	}},
	{&bgv1.Mailbox{}, MailboxEmail, func(o client.Object) []string {
		return []string{strings.ToLower(o.(*bgv1.Mailbox).Spec.Email)}
	}},
	{&bgv1.Mailbox{}, MailboxAccountID, func(o client.Object) []string {
		return mailboxAccountIDs(o.(*bgv1.Mailbox))
	}},
	{&bgv1.ProtectionPolicy{}, PolicyGate, func(o client.Object) []string {
		if o.(*bgv1.ProtectionPolicy).Spec.Gate.TokenSecretRef != nil {
			return []string{ValueSet}
		}
		return nil
	}},
	{&bgv1.ProtectionPolicy{}, PolicyOrganization, func(o client.Object) []string {
		if id := o.(*bgv1.ProtectionPolicy).Spec.Smartlead.OrganizationID; id != "" {
			return []string{id}
		}
		return nil
	}},
}

// AddIndexes registers every field index (Indexes) with indexer, the manager's cache.
func AddIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	for _, ix := range Indexes {
		if err := indexer.IndexField(ctx, ix.Object, ix.Field, ix.Extract); err != nil {
			return err
		}
	}
	return nil
}

// mailboxAccountIDs lists the distinct account ids a mailbox is known by.
func mailboxAccountIDs(mb *bgv1.Mailbox) []string {
	var ids []string
	add := func(id int64) {
		if s := strconv.FormatInt(id, 10); id > 0 && !slices.Contains(ids, s) {
			ids = append(ids, s)
		}
	}
	if id := mb.Spec.SmartleadAccountID; id != nil {
		add(*id)
	}
	add(mb.Status.Smartlead.AccountID)
	if acc := mb.Status.Account; acc != nil && !acc.Missing {
		add(acc.ID)
	}
	return ids
}
