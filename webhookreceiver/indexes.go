package webhookreceiver

import (
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Index names the receiver and the gate look objects up by.
const (
	// IndexMailboxEmail indexes Mailboxes by spec.email.
	IndexMailboxEmail = "spec.email"
	// IndexMailboxAccountID indexes Mailboxes by spec.smartleadAccountID (decimal).
	IndexMailboxAccountID = "spec.smartleadAccountID"
	// IndexPolicyOrganization indexes ProtectionPolicies by spec.smartlead.organizationID.
	IndexPolicyOrganization = "spec.smartlead.organizationID"
)

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
		if id := o.(*bgv1.Mailbox).Spec.SmartleadAccountID; id != nil {
			return []string{strconv.FormatInt(*id, 10)}
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
