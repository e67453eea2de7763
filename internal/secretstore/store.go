// Package secretstore holds the data of the Secrets that bounceguard's policies reference, and of no
// other: each is read from the API server on first use and kept until a metadata-only watch of Secrets
// says it changed. The manager so caches no Secret's data but those it uses, and no webhook, gate
// question or Smartlead call reads a Secret from the API server.
package secretstore

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretMetadata is the object whose informer the store and the reconcilers watch: Secrets' metadata
// alone, never their data.
func SecretMetadata() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
}

// Store is a client.Reader of Secrets (Get only) backed by the API server and kept by name.
type Store struct {
	// Reader reads Secrets from the API server (the manager's API reader, not its cache).
	Reader client.Reader

	mu          sync.Mutex
	subscribers []func(types.NamespacedName)
	watched     bool
	epoch       uint64 // bumped by every forget, so that a read that raced a change is not kept
	m           map[types.NamespacedName]*corev1.Secret
}

var _ client.Reader = (*Store)(nil)

// Get reads a Secret into obj, which must be a *corev1.Secret: from the store when it holds it, else
// from the API server (kept once Watch has wired the store, so that a change is noticed). A missing
// Secret answers NotFound and is remembered as missing until one is created.
func (s *Store) Get(ctx context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	out, ok := obj.(*corev1.Secret)
	if !ok {
		return fmt.Errorf("secretstore: Get of %T: only Secrets are held", obj)
	}
	s.mu.Lock()
	secret, held := s.m[key]
	watched, epoch := s.watched, s.epoch
	s.mu.Unlock()
	if !held {
		var fresh corev1.Secret
		if err := s.Reader.Get(ctx, key, &fresh); err != nil {
			if !apierrors.IsNotFound(err) {
				return err
			}
			secret = nil
		} else {
			fresh.ManagedFields, fresh.Annotations = nil, nil
			secret = &fresh
		}
		if watched {
			s.mu.Lock()
			if s.epoch == epoch {
				if s.m == nil {
					s.m = map[types.NamespacedName]*corev1.Secret{}
				}
				s.m[key] = secret
			}
			s.mu.Unlock()
		}
	}
	if secret == nil {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	secret.DeepCopyInto(out)
	return nil
}

// List is not supported: the store holds Secrets by name only.
func (s *Store) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("secretstore: List is not supported")
}

// Held is how many Secrets (or their absence) the store holds.
func (s *Store) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Subscribe has fn called with a Secret's key after the store has dropped it on a change, so that what
// fn does next reads the new data. Subscribe before the informer starts, or miss its first events.
func (s *Store) Subscribe(fn func(types.NamespacedName)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscribers = append(s.subscribers, fn)
}

// Watch wires the store to an informer of Secret metadata (see SecretMetadata): every event about a
// Secret drops what the store holds of it, then tells the subscribers.
func (s *Store) Watch(informer interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}) error {
	forget := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		o, ok := obj.(client.Object)
		if !ok {
			return
		}
		key := client.ObjectKeyFromObject(o)
		s.mu.Lock()
		s.epoch++
		delete(s.m, key)
		subscribers := s.subscribers
		s.mu.Unlock()
		for _, fn := range subscribers {
			fn(key)
		}
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: forget,
		UpdateFunc: func(_, cur any) { forget(cur) }, DeleteFunc: forget}); err != nil {
		return err
	}
	s.mu.Lock()
	s.watched = true
	s.mu.Unlock()
	return nil
}
