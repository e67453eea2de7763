package webhookreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/tally"
)

// maxWriteAttempts bounds the re-read-and-re-apply loop of one flush.
const maxWriteAttempts = 20

// writeTimeout bounds one flush's API calls.
const writeTimeout = 10 * time.Second

// Committer group-commits events into Mailbox status: per mailbox, every event that arrives while a
// write is in flight (or within the batch window) goes into the next single write. Writes carry the
// resourceVersion they were computed from; on a conflict the mailbox is re-read and the events are
// re-applied, so counters are never overwritten. A caller learns its event's fate only once the write
// that carries it has succeeded.
type Committer struct {
	client client.Client
	reader client.Reader
	window time.Duration

	mu     sync.Mutex
	queues map[types.NamespacedName]*queue
}

// queue is one mailbox's events in flight; it exists only while its flush loop runs.
type queue struct {
	pending []*item
	// last is the newest copy of the mailbox this loop read or wrote; its next write starts from it.
	last *bgv1.Mailbox
}

type item struct {
	ev    tally.Event
	rules protection.Rules
	done  chan result
}

type result struct {
	recorded bool
	err      error
}

// NewCommitter returns a Committer that writes with c and re-reads with reader (uncached). A zero
// window writes each event on its own, one write at a time per mailbox (no batching).
func NewCommitter(c client.Client, reader client.Reader, window time.Duration) *Committer {
	return &Committer{client: c, reader: reader, window: window, queues: map[types.NamespacedName]*queue{}}
}

// Submit records ev in the status of mb (which names the mailbox; its status is read from the API server)
// and reports whether it was new (false: a duplicate). It returns once the event is durably stored, or
// with an error.
func (c *Committer) Submit(ctx context.Context, mb *bgv1.Mailbox, ev tally.Event, rules protection.Rules) (bool, error) {
	key := client.ObjectKeyFromObject(mb)
	it := &item{ev: ev, rules: rules, done: make(chan result, 1)}
	c.mu.Lock()
	q := c.queues[key]
	start := q == nil
	if start {
		// No loop runs for this mailbox: its first write starts from the API server's copy, read once
		// for the whole loop. The cache's copy cannot serve: it lacks the de-duplication memory
		// (tally.StripRecent), and it may not yet show the previous loop's write.
		q = &queue{}
		c.queues[key] = q
	}
	q.pending = append(q.pending, it)
	c.mu.Unlock()
	if start {
		go c.flushLoop(key, q)
	}
	select {
	case r := <-it.done:
		return r.recorded, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// flushLoop writes the queue's pending events until none are left.
func (c *Committer) flushLoop(key types.NamespacedName, q *queue) {
	if c.window > 0 {
		time.Sleep(c.window)
	}
	for {
		c.mu.Lock()
		if len(q.pending) == 0 {
			delete(c.queues, key) // nothing in flight: nothing of this mailbox is held
			c.mu.Unlock()
			return
		}
		n := len(q.pending)
		if c.window == 0 {
			n = 1
		}
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		base := q.last
		c.mu.Unlock()

		written, recorded, err := c.write(key, base, batch)

		c.mu.Lock()
		q.last = written // nil after an error: the next write re-reads the mailbox
		c.mu.Unlock()
		for i, it := range batch {
			it.done <- result{recorded: err == nil && recorded[i], err: err}
		}
	}
}

// write applies batch to the mailbox and stores it, re-reading and re-applying on conflicts. It returns
// the newest copy of the mailbox (nil after an error), which events were new, and the error, if any.
func (c *Committer) write(key types.NamespacedName, base *bgv1.Mailbox, batch []*item) (*bgv1.Mailbox, []bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	recorded := make([]bool, len(batch))
	for attempt := 0; attempt < maxWriteAttempts; attempt++ {
		if base == nil || base.ResourceVersion == "" {
			// Without a resourceVersion an update would not be conditional: always start from a read.
			fresh := &bgv1.Mailbox{}
			if err := c.reader.Get(ctx, key, fresh); err != nil {
				return nil, nil, fmt.Errorf("reading mailbox: %w", err)
			}
			base = fresh
		}
		obj := base.DeepCopy()
		anyNew := false
		for i, it := range batch {
			recorded[i] = tally.Apply(&obj.Status, it.ev, it.rules.CountSoftBounces)
			anyNew = anyNew || recorded[i]
		}
		if !anyNew {
			return base, recorded, nil
		}
		tally.Refresh(&obj.Status, batch[len(batch)-1].rules.Pause.WithinSends)
		err := c.client.Status().Update(ctx, obj)
		switch {
		case err == nil:
			statusWrites.WithLabelValues("ok").Inc()
			batchSize.Observe(float64(len(batch)))
			return obj, recorded, nil
		case apierrors.IsConflict(err):
			statusWrites.WithLabelValues("conflict").Inc()
			base = nil
		default:
			statusWrites.WithLabelValues("error").Inc()
			return nil, nil, fmt.Errorf("writing mailbox status: %w", err)
		}
	}
	return nil, nil, errors.New("writing mailbox status: too many conflicting writers")
}
