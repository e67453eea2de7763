package controllers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// An API key rotation leaves no queue behind: a key's queue (and its workers) goes once it owes nothing,
// while a queue whose mailbox waits for a retry after a failed call is kept until that mailbox is carried
// out: nothing queued is ever lost.
func TestSmartleadQueuesLetGoOfRotatedKeys(t *testing.T) {
	var mu sync.Mutex
	carried := map[types.NamespacedName]int{}
	done := make(chan types.NamespacedName, 10)
	q := &SmartleadQueues{Carry: func(_ context.Context, key types.NamespacedName) error {
		mu.Lock()
		carried[key]++
		n := carried[key]
		mu.Unlock()
		if key.Name == "sdr-failing" && n == 1 {
			return errors.New("smartlead Suspend: HTTP 503 after 5 attempt(s)")
		}
		done <- key
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Start(ctx) }()
	creds := func(secret string) Credentials {
		return Credentials{Namespace: "acme", APIKeySecretRef: &bgv1.SecretKeySelector{Name: secret, Key: "apiKey"}}
	}
	queues := func() int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.queues)
	}
	quiet := types.NamespacedName{Namespace: "acme", Name: "sdr-quiet"}
	failing := types.NamespacedName{Namespace: "acme", Name: "sdr-failing"}
	q.Add(creds("smartlead-2026-10"), quiet)
	if got := <-done; got != quiet {
		t.Fatalf("carried %v", got)
	}
	q.Add(creds("smartlead-2026-11"), failing) // fails once: waits 100 ms for its retry
	for {
		mu.Lock()
		n := carried[failing]
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	current := types.NamespacedName{Namespace: "acme", Name: "sdr-current"}
	q.Add(creds("smartlead-2026-12"), current)
	if n := queues(); n != 2 {
		t.Fatalf("%d queues after the rotations, want 2 (the one owing a retry, the current one)", n)
	}
	for range 2 {
		<-done // the current one, and the failing one's retry
	}
	q.Add(creds("smartlead-2026-12"), current)
	<-done
	if n := queues(); n != 1 {
		t.Fatalf("%d queues once the retry was carried out, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if carried[failing] != 2 {
		t.Fatalf("the failing mailbox was carried %d times, want 2 (not lost)", carried[failing])
	}
}
