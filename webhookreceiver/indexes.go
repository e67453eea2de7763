package webhookreceiver

import (
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Index names the receiver and the gate look objects up by.
const (
	// IndexMailboxEmail indexes Mailboxes by spec.email.
	IndexMailboxEmail = "spec.email"
	// IndexMailboxAccountID indexes Mailboxes by their Smartlead account id (decimal): spec.smartleadAccountID,
	// and the ids bounceguard learned when the spec has none: status.smartlead.accountID (a pause) and
	// status.account.id (the account sync).
	IndexMailboxAccountID = "smartleadAccountID"
	// IndexPolicyOrganization indexes ProtectionPolicies by spec.smartlead.organizationID.
	IndexPolicyOrganization = "spec.smartlead.organizationID"
	// IndexPolicyGate indexes ProtectionPolicies that have a gate token (value indexValueSet).
	IndexPolicyGate = "spec.gate.tokenSecretRef"
)

// indexValueSet is the value of presence indexes.
const indexValueSet = "set"

// FieldIndex is one field index the receiver needs in the cache.
type FieldIndex struct {
	// Object is the kind indexed.
	Object client.Object
	// Field is the index name.
	Field string
	// Extract returns the index values of an object.
	Extract client.IndexerFunc
}

// Indexes lists the field indexes the receiver needs; the manager's cache must register them.
var Indexes = []FieldIndex{
	{&bgv1.Mailbox{}, IndexMailboxEmail, func(o client.Object) []string {
		return []string{strings.ToLower(o.(*bgv1.Mailbox).Spec.Email)}
	}},
	{&bgv1.Mailbox{}, IndexMailboxAccountID, func(o client.Object) []string {
		return mailboxAccountIDs(o.(*bgv1.Mailbox))
	}},
	{&bgv1.ProtectionPolicy{}, IndexPolicyGate, func(o client.Object) []string {
		if o.(*bgv1.ProtectionPolicy).Spec.Gate.TokenSecretRef != nil {
			return []string{indexValueSet}
		}
		return nil
	}},
	{&bgv1.ProtectionPolicy{}, IndexPolicyOrganization, func(o client.Object) []string {
		if id := o.(*bgv1.ProtectionPolicy).Spec.Smartlead.OrganizationID; id != "" {
			return []string{id}
		}
		return nil
	}},
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
