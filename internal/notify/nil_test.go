package notify

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// A nil *Dispatcher is a Notifier that announces nothing and keeps no status. A reconciler given one holds
// a non-nil Notifier interface with a nil pointer in it (which the reconcilers' nil check lets through),
// so every method must be safe on a nil receiver, as it was when the reconcilers held the pointer itself.
func TestNilDispatcherAnnouncesNothing(t *testing.T) {
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns"},
		Spec: bgv1.ProtectionPolicySpec{Notifications: []bgv1.NotificationTarget{{Type: bgv1.NotificationSlack,
			URLSecretRef: bgv1.SecretKeySelector{Name: "slack", Key: "url"}}}}}
	var d *Dispatcher
	d.Notify(policy, bgv1.Notice{Event: bgv1.NotifyPaused, Mailbox: "ann@acme.com"})
	d.Retain(types.NamespacedName{Namespace: "ns", Name: "default"}, policy)
	d.Retain(types.NamespacedName{Namespace: "ns", Name: "default"}, nil)
	if st := d.Status(policy); st != nil {
		t.Errorf("status %+v, want none", st)
	}
}
