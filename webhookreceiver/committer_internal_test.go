package webhookreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/protection"
	"github.com/bounceguard/bounceguard/tally"
)

// The committer holds nothing for a mailbox once it has gone quiet (SPEC: a lean memory at 10,000
// mailboxes): its queue, with the newest copy of the mailbox, is forgotten after idleForget.
func TestCommitterForgetsQuietMailboxes(t *testing.T) {
	s, c := newTestServer(t, nil, logr.Discard())
	s.Committer.forgetAfter = 100 * time.Millisecond
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
	if queued() != 1 {
		t.Fatalf("%d queues right after a write", queued())
	}
	deadline := time.Now().Add(10 * time.Second)
	for queued() != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if queued() != 0 {
		t.Fatal("the queue of a quiet mailbox was kept")
	}
}
