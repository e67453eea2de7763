package manager

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// The cache keeps a Mailbox without its de-duplication memory and managedFields, but with everything a
// reconcile decides from (counters, window, bounce marks, Smartlead record); Secrets' metadata without
// annotations.
func TestCacheTransform(t *testing.T) {
	transform := (&Options{}).CacheOptions().DefaultTransform
	mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}}
	for i := range 120 {
		kind := tally.Send
		if i%30 == 0 {
			kind = tally.Bounce
		}
		tally.Apply(&mb.Status, tally.Event{ID: string(rune('a'+i%26)) + time.Duration(i).String(), Kind: kind, At: time.Now()}, false)
	}
	mb.Status.Ledger.EventIDs, mb.Status.Ledger.Recent = []string{"old-form"}, "AAAAAAAA" // the former forms
	mb.Status.Smartlead.AccountID = 7
	want := mb.Status.DeepCopy()
	if want.Ledger.Seen == "" || len(want.Ledger.BounceMarks) == 0 {
		t.Fatal("the fixture has no ledger to strip")
	}
	out, err := transform(mb.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*bgv1.Mailbox)
	if l := got.Status.Ledger; l.Seen != "" || l.Recent != "" || l.EventIDs != nil || got.ManagedFields != nil {
		t.Fatalf("cached with seen %q, recent %q, eventIDs %v, managedFields %v", l.Seen, l.Recent, l.EventIDs, got.ManagedFields)
	}
	want.Ledger.Seen, want.Ledger.Recent, want.Ledger.EventIDs = "", "", nil
	if got.Status.Sent != want.Sent || got.Status.Bounced != want.Bounced || got.Status.WindowBounces != want.WindowBounces ||
		len(got.Status.Ledger.BounceMarks) != len(want.Ledger.BounceMarks) || got.Status.Smartlead.AccountID != 7 {
		t.Fatalf("cached status lost what reconciles read:\n got %+v\nwant %+v", got.Status, *want)
	}

	meta := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "sl",
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"apiKey":"c2VjcmV0"}}`}}}
	out, err = transform(meta)
	if err != nil {
		t.Fatal(err)
	}
	if a := out.(*metav1.PartialObjectMetadata).Annotations; a != nil {
		t.Fatalf("Secret metadata cached with annotations %v", a)
	}
}
