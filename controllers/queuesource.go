package controllers

import (
	"context"
	"sync/atomic"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// queueSource hands a controller's work queue to code outside the controller (an informer handler that
// must finish its own bookkeeping before the reconcile it asks for may run). Requests made before the
// controller has started (on a replica that is not the leader) are dropped: the controller reconciles
// every object when it starts.
type queueSource struct {
	q atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
}

// Source is the controller source to register with WatchesRawSource.
func (s *queueSource) Source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		s.q.Store(&q)
		return nil
	})
}

// Add queues the requests, when the controller has started.
func (s *queueSource) Add(reqs ...reconcile.Request) {
	if q := s.q.Load(); q != nil {
		for _, r := range reqs {
			(*q).Add(r)
		}
	}
}

// lowPriority has h enqueue what it enqueues at handler.LowPriority: bulk work, such as every mailbox
// of a policy whose mode changed, then waits behind what the receiver's writes bring (a threshold
// crossing) instead of in front of it. A request already queued keeps its higher priority, and a
// receiver write raises a queued low one.
func lowPriority(h handler.EventHandler) handler.EventHandler {
	return lowPriorityHandler{h}
}

type lowPriorityHandler struct{ handler.EventHandler }

func (h lowPriorityHandler) Create(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.EventHandler.Create(ctx, e, lowPriorityQueue{q})
}

func (h lowPriorityHandler) Update(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.EventHandler.Update(ctx, e, lowPriorityQueue{q})
}

func (h lowPriorityHandler) Delete(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.EventHandler.Delete(ctx, e, lowPriorityQueue{q})
}

func (h lowPriorityHandler) Generic(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.EventHandler.Generic(ctx, e, lowPriorityQueue{q})
}

// lowPriorityQueue adds at handler.LowPriority when the queue is a priority queue.
type lowPriorityQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (q lowPriorityQueue) Add(item reconcile.Request) {
	if pq, ok := q.TypedRateLimitingInterface.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, item)
		return
	}
	q.TypedRateLimitingInterface.Add(item)
}
