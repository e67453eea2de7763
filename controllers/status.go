package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cacheWaitTimeout bounds how long a reconcile waits for the cache to show its own status write.
const cacheWaitTimeout = 5 * time.Second

// patchStatus writes the difference between before and obj to obj's status subresource as a merge
// patch, and does nothing when there is none. Reconcilers call it once, deferred, per reconcile.
//
// When obj carries a resourceVersion, it then waits (briefly) until the cache has caught up with the
// write, so that the next reconcile of the object does not decide again from the state before it: no
// doubled Events, no repeated Smartlead call.
func patchStatus(ctx context.Context, c client.Client, before, obj client.Object) error {
	return writeStatus(ctx, c, before, obj, client.MergeFrom(before))
}

// patchStatusLocked is patchStatus made conditional on before's resourceVersion: it fails with a
// Conflict when anyone wrote the object since it was read.
func patchStatusLocked(ctx context.Context, c client.Client, before, obj client.Object) error {
	return writeStatus(ctx, c, before, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

func writeStatus(ctx context.Context, c client.Client, before, obj client.Object, patch client.Patch) error {
	data, err := patch.Data(obj)
	if err != nil {
		return fmt.Errorf("computing the status patch: %w", err)
	}
	if string(data) == "{}" {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("patching the status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	statusPatches.WithLabelValues(reflect.TypeOf(obj).Elem().Name()).Inc()
	if before.GetResourceVersion() != "" {
		waitForCache(ctx, c, obj)
	}
	return nil
}

// patchOwnedStatus is patchStatus for kinds whose whole status one reconciler owns (Domain,
// ProtectionPolicy). The first write (neverWritten: before's observedGeneration is 0) sends the whole
// status, zero counters included, so that `kubectl get` shows 0 rather than nothing.
func patchOwnedStatus(ctx context.Context, c client.Client, before, obj client.Object, neverWritten bool, status any) error {
	if !neverWritten {
		return patchStatus(ctx, c, before, obj)
	}
	data, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return fmt.Errorf("encoding the status: %w", err)
	}
	return writeStatus(ctx, c, before, obj, client.RawPatch(types.MergePatchType, data))
}

// waitForCache polls c's cache until it holds obj at obj's resourceVersion or a later one.
func waitForCache(ctx context.Context, c client.Client, obj client.Object) {
	want := obj.GetResourceVersion()
	cached := obj.DeepCopyObject().(client.Object)
	deadline := time.Now().Add(cacheWaitTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cached); err != nil || !olderVersion(cached.GetResourceVersion(), want) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// olderVersion reports whether resourceVersion a precedes b. Resource versions are etcd revisions; when
// either does not parse as one, only equality is known.
func olderVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x < y
}
