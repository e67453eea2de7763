package secretstore_test

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/bounceguard/bounceguard/internal/secretstore"
)

type informer struct {
	h toolscache.ResourceEventHandler
}

func (i *informer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	i.h = h
	return nil, nil
}

func secret(name, value string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"k":"` + value + `"}}`}},
		Data: map[string][]byte{"k": []byte(value)}}
}

func meta(name string) *metav1.PartialObjectMetadata {
	m := secretstore.SecretMetadata()
	m.Name, m.Namespace = name, "ns"
	return m
}

// The store reads a Secret once, serves it from memory until the watch says it changed, remembers a
// missing one as missing until it is created, tells subscribers after it has dropped the old data,
// keeps no annotation (kubectl's last-applied copy of the data), and holds only what was asked for.
func TestStoreReadsOnceAndForgetsOnChange(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reads := 0
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret("a", "one"), secret("unused", "x")).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			reads++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	store := &secretstore.Store{Reader: c}
	inf := &informer{}
	if err := store.Watch(inf); err != nil {
		t.Fatal(err)
	}
	var seen []string
	store.Subscribe(func(key types.NamespacedName) {
		var s corev1.Secret
		err := store.Get(context.Background(), key, &s)
		seen = append(seen, key.Name+"="+string(s.Data["k"])+errString(err))
	})
	ctx := context.Background()
	get := func(name string) (string, error) {
		var s corev1.Secret
		err := store.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, &s)
		if len(s.Annotations) > 0 {
			t.Fatalf("annotations kept: %v", s.Annotations)
		}
		return string(s.Data["k"]), err
	}
	for range 3 {
		if v, err := get("a"); err != nil || v != "one" {
			t.Fatalf("a = %q, %v", v, err)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads for three Gets, want 1", reads)
	}
	// A Secret handed back is a copy: changing it changes nothing held.
	var s corev1.Secret
	_ = store.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "a"}, &s)
	s.Data["k"][0] = 'X'
	if v, _ := get("a"); v != "one" {
		t.Fatalf("the held Secret was changed through a copy: %q", v)
	}

	// Rotated: the watch's event drops it; the subscriber, called after, reads the new value.
	updated := secret("a", "two")
	if err := c.Update(ctx, updated); err != nil {
		t.Fatal(err)
	}
	inf.h.OnUpdate(meta("a"), meta("a"))
	if v, _ := get("a"); v != "two" {
		t.Fatalf("after the change a = %q", v)
	}
	if len(seen) != 1 || seen[0] != "a=two" {
		t.Fatalf("subscriber saw %v, want the new value", seen)
	}

	// Missing: NotFound, remembered (no read per request) until the Secret is created.
	before := reads
	for range 3 {
		if _, err := get("late"); !apierrors.IsNotFound(err) {
			t.Fatalf("missing Secret: %v", err)
		}
	}
	if reads != before+1 {
		t.Fatalf("%d reads for a missing Secret asked three times, want 1", reads-before)
	}
	if err := c.Create(ctx, secret("late", "now")); err != nil {
		t.Fatal(err)
	}
	inf.h.OnAdd(meta("late"), false)
	if v, err := get("late"); err != nil || v != "now" {
		t.Fatalf("created Secret = %q, %v", v, err)
	}
	if err := c.Delete(ctx, secret("late", "")); err != nil {
		t.Fatal(err)
	}
	inf.h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/late", Obj: meta("late")})
	if _, err := get("late"); !apierrors.IsNotFound(err) {
		t.Fatalf("deleted Secret: %v", err)
	}
	if n := store.Held(); n != 2 {
		t.Fatalf("the store holds %d Secrets, want 2 (a and the deleted late): an unused one must never be read", n)
	}
	if err := store.Get(ctx, types.NamespacedName{Namespace: "ns", Name: "a"}, &corev1.ConfigMap{}); err == nil {
		t.Fatal("a Get of a ConfigMap was answered")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return " " + string(status.Status().Reason)
	}
	return " " + err.Error()
}
