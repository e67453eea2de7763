package controllers

import (
	"context"
	"sync/atomic"

	"k8s.io/client-go/util/workqueue"
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
