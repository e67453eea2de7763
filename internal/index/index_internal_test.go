package index

import (
	"slices"
	"testing"

	"k8s.io/utils/ptr"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// A nested-shape webhook names its sender by account id: a Mailbox is found by the id in its spec, the
// one it was paused under, and the one the account sync found for its address — each once.
func TestMailboxAccountIDs(t *testing.T) {
	cases := []struct {
		name string
		mb   bgv1.Mailbox
		want []string
	}{
		{"none known", bgv1.Mailbox{}, nil},
		{"spec", bgv1.Mailbox{Spec: bgv1.MailboxSpec{SmartleadAccountID: ptr.To[int64](7)}}, []string{"7"}},
		{"learned by a pause", bgv1.Mailbox{Status: bgv1.MailboxStatus{Smartlead: bgv1.SmartleadState{AccountID: 8}}}, []string{"8"}},
		{"found by the sync", bgv1.Mailbox{Status: bgv1.MailboxStatus{Account: &bgv1.AccountState{ID: 9}}}, []string{"9"}},
		{"the sync found it gone", bgv1.Mailbox{Status: bgv1.MailboxStatus{Account: &bgv1.AccountState{ID: 9, Missing: true}}}, nil},
		{"the same id three ways, once", bgv1.Mailbox{Spec: bgv1.MailboxSpec{SmartleadAccountID: ptr.To[int64](7)},
			Status: bgv1.MailboxStatus{Smartlead: bgv1.SmartleadState{AccountID: 7}, Account: &bgv1.AccountState{ID: 7}}}, []string{"7"}},
	}
	for _, c := range cases {
		if got := mailboxAccountIDs(&c.mb); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
