package index

import (
	"fmt"
	"testing"
)

// The index names are the cache's index keys, looked up by the reconcilers and the receiver alike: their
// values do not change with the Go names, and no kind has two indexes of one name (the second would be
// refused when the manager registers them).
func TestIndexNamesAreStable(t *testing.T) {
	for name, c := range map[string]struct{ got, want string }{
		"MailboxPolicy":      {MailboxPolicy, "spec.policyRef.name"},
		"MailboxDomain":      {MailboxDomain, "domain"},
		"MailboxEmail":       {MailboxEmail, "spec.email"},
		"MailboxAccountID":   {MailboxAccountID, "smartleadAccountID"},
		"DomainPolicy":       {DomainPolicy, "spec.policyRef.name"},
		"PolicySecret":       {PolicySecret, "secretRefs"},
		"PolicyOrganization": {PolicyOrganization, "spec.smartlead.organizationID"},
		"PolicyGate":         {PolicyGate, "spec.gate.tokenSecretRef"},
		"ValueSet":           {ValueSet, "set"},
	} {
		if c.got != c.want {
			t.Errorf("%s is %q, want %q", name, c.got, c.want)
		}
	}
	seen := map[string]bool{}
	for _, ix := range Indexes {
		key := fmt.Sprintf("%T %s", ix.Object, ix.Field)
		if seen[key] {
			t.Errorf("two indexes %s", key)
		}
		seen[key] = true
	}
	if len(seen) != 8 {
		t.Errorf("%d indexes, want 8", len(seen))
	}
}
