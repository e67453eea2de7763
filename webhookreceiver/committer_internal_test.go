package webhookreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// The committer holds nothing for a mailbox beyond its events in flight (a lean memory at 10,000
// mailboxes): once its write is done, its queue and copy of the mailbox are gone.
func TestCommitterForgetsQuietMailboxes(t *testing.T) {
	s, c := newTestServer(t, nil, logr.Discard())
	var mb bgv1.Mailbox
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "acme", Name: "alice-acme-com"}, &mb); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Committer.Submit(context.Background(), &mb, tally.Event{ID: "e1", Kind: tally.Send, At: time.Now()}, protection.RulesFor(nil)); err != nil {
		t.Fatal(err)
	}
	queued := func() int {
		s.Committer.mu.Lock()
		defer s.Committer.mu.Unlock()
		return len(s.Committer.queues)
	}
	// The loop lets go of the queue just after it has answered the last event.
	deadline := time.Now().Add(5 * time.Second)
	for queued() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if queued() != 0 {
		t.Fatal("the queue of a quiet mailbox was kept")
	}
	// The next event starts from a stale copy (the one read before the first write): it conflicts,
	// re-reads and is recorded all the same, on top of the first.
	if ok, err := s.Committer.Submit(context.Background(), &mb, tally.Event{ID: "e2", Kind: tally.Send, At: time.Now()}, protection.RulesFor(nil)); err != nil || !ok {
		t.Fatalf("second event: recorded %v, %v", ok, err)
	}
	var got bgv1.Mailbox
	if err := s.Committer.reader.Get(context.Background(), client.ObjectKeyFromObject(&mb), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Sent != mb.Status.Sent+2 {
		t.Fatalf("sent %d after two events on %d", got.Status.Sent, mb.Status.Sent)
	}
}
