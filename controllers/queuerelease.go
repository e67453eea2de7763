package controllers

import (
	"k8s.io/apimachinery/pkg/types"
)

// A per-key queue is let go once it owes nothing: every mailbox added to it has been carried out (a
// mailbox waiting for a retry after a failure is still owed, though the queue's length does not count
// it). A rotated key's queue and its workers do not stay for ever; a queue made again on the next Add is
// harmless, a queue dropped with work in it is not, and never happens.

// owe records that the queue id holds key until it is carried out; q.mu is held.
func (q *SmartleadQueues) owe(id string, key types.NamespacedName) {
	if q.owed == nil {
		q.owed = map[string]map[types.NamespacedName]bool{}
	}
	if q.owed[id] == nil {
		q.owed[id] = map[types.NamespacedName]bool{}
	}
	q.owed[id][key] = true
}

// settle records the outcome of carrying key out on the queue id: done, it is owed no more (called after
// wq.Done, so that a key added again meanwhile is back in the queue, where its length counts it); failed,
// it stays owed while it waits for its retry (called before it is re-added).
func (q *SmartleadQueues) settle(id string, key types.NamespacedName, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if done {
		delete(q.owed[id], key)
	} else {
		q.owe(id, key)
	}
}

// releaseIdle shuts down and forgets every queue but keep that owes nothing and holds nothing; q.mu is held.
func (q *SmartleadQueues) releaseIdle(keep string) {
	for id, wq := range q.queues {
		if id == keep || len(q.owed[id]) > 0 || wq.Len() > 0 {
			continue
		}
		wq.ShutDown()
		delete(q.queues, id)
		delete(q.owed, id)
	}
}

// Len is how many per-key queues are held.
func (q *SmartleadQueues) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queues)
}
