package controllers

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
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

// mailboxChanges enqueues a Mailbox on its own changes. What can change its health or what must be done
// — an event the receiver recorded, a Smartlead outcome, its spec, annotations, finalizers or deletion —
// is queued at normal priority; a change the reconciler made itself (conditions, health it already
// acted on) only at low priority, like the initial list. Without this, each status write of a
// fleet-wide mode change would queue its mailbox again at normal priority, in front of a threshold
// crossing.
func mailboxChanges() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object, low bool) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
		if low {
			lowPriorityQueue{q}.Add(req)
			return
		}
		q.Add(req)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, e.IsInInitialList)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, cur := e.ObjectOld.(*bgv1.Mailbox), e.ObjectNew.(*bgv1.Mailbox)
			if old.ResourceVersion != cur.ResourceVersion && descriptionOnly(old, cur) {
				return // the reconciler's own description of a state it has already acted on
			}
			add(q, cur, !urgentChange(old, cur))
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, false)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, false)
		},
	}
}

// descriptionOnly reports whether a Mailbox changed only in what the reconciler writes to describe a
// state it has already acted on in the same reconcile: conditions, the generation observed, the health
// reason and message. Such a write needs no reconcile after it (it would decide the same and write
// nothing); without this rule every first reconcile of a new mailbox was followed by a second one.
func descriptionOnly(old, cur *bgv1.Mailbox) bool {
	return !urgentChange(old, cur) && statusEqualBut(old, cur, true)
}

// urgentChange reports whether a Mailbox changed in what can make it worse or what must be done: a
// bounce recorded, a Smartlead outcome, its spec, annotations, finalizers or deletion. A send alone only
// dilutes the bounces in its window (it can lead to a recovery, never to a pause), so it waits behind
// those, with the reconciler's own writes and a policy's fan-out.
func urgentChange(old, cur *bgv1.Mailbox) bool {
	return old.Generation != cur.Generation || !maps.Equal(old.Annotations, cur.Annotations) ||
		!slices.Equal(old.Finalizers, cur.Finalizers) || !old.DeletionTimestamp.Equal(cur.DeletionTimestamp) ||
		old.Status.Bounced != cur.Status.Bounced || old.Status.SoftBounced != cur.Status.SoftBounced ||
		!equality.Semantic.DeepEqual(old.Status.Smartlead, cur.Status.Smartlead)
}
