package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Shard restricts a manager to the namespaces whose labels match a selector (--watch-label-selector):
// it reconciles only their policies, mailboxes and domains, and its receiver and gate answer only for
// their policies. The nil Shard, or one with an empty selector, holds every namespace.
type Shard struct {
	selector labels.Selector
	// reader reads Namespaces from a cache that holds only the matching ones.
	reader client.Reader
}

// ParseShard parses a --watch-label-selector; "" is every namespace.
func ParseShard(selector string) (*Shard, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector %q: %w", selector, err)
	}
	return &Shard{selector: sel}, nil
}

// NewShard parses a --watch-label-selector ("" is every namespace) into a Shard that reads Namespaces from
// namespaces: a cache that holds only the matching ones.
func NewShard(selector string, namespaces client.Reader) (*Shard, error) {
	s, err := ParseShard(selector)
	if err != nil {
		return nil, err
	}
	s.reader = namespaces
	return s, nil
}

// Selector is the shard's namespace label selector; nil when the shard holds every namespace.
func (s *Shard) Selector() labels.Selector {
	if s == nil || s.selector == nil || s.selector.Empty() {
		return nil
	}
	return s.selector
}

// Contains reports whether namespace ns belongs to the shard. It reads the manager's cache.
func (s *Shard) Contains(ctx context.Context, ns string) bool {
	sel := s.Selector()
	if sel == nil {
		return true
	}
	var n corev1.Namespace
	if err := s.reader.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
		return false
	}
	return sel.Matches(labels.Set(n.Labels))
}

// watchNamespaces has b reconcile every object of list's type in a namespace that joins the shard (is
// labelled to match: it appears in the shard's Namespace cache); unsharded, it adds nothing. Namespaces
// listed at start and later edits of a member namespace reconcile nothing: the objects' own watches
// cover them.
func (s *Shard) watchNamespaces(b *builder.Builder, c client.Reader, list client.ObjectList) *builder.Builder {
	if s.Selector() == nil {
		return b
	}
	joins := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList },
		UpdateFunc: func(event.UpdateEvent) bool { return false },
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
	return b.Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(requestsInNamespace(c, list)),
		builder.WithPredicates(joins))
}

// requestsInNamespace maps a Namespace that joins the shard to every object of list's type in it.
func requestsInNamespace(c client.Reader, list client.ObjectList) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		if err := c.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
			return nil
		}
		return requestsOf(list)
	}
}
