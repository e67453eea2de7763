package controllers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead"
)

// endlessAccounts answers every GET /email-accounts/ with a full page of accounts it never served before,
// however far the offset goes; slow delays each answer.
func endlessAccounts(t *testing.T, slow time.Duration) (base string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var b strings.Builder
		b.WriteString("[")
		for i := range smartlead.PageSize {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%d,"from_email":"rep%d@endless-outreach.io","message_per_day":50}`, 300000+offset+i, offset+i)
		}
		b.WriteString("]")
		fmt.Fprint(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

// A Smartlead (or a tenant's own baseURL) that always answers a full page cannot keep the account sync
// running, nor make it hold every page: the sync stops at the page bound, or at its deadline when the
// pages come slowly, and the policy's status and a Warning Event say why; the next try is within a minute.
func TestSyncIsBoundedAgainstAnEndlessAccountList(t *testing.T) {
	for _, tc := range []struct {
		name     string
		slow     time.Duration
		deadline time.Duration
		want     string
	}{
		{"full pages for ever", 0, time.Minute, "more than 1000 pages"},
		{"slow full pages for ever", 20 * time.Millisecond, 500 * time.Millisecond, "did not finish within 500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSyncFleet(t, 3, 0)
			base, requests := endlessAccounts(t, tc.slow)
			sc, err := smartlead.New(base, "key", smartlead.Options{Limiter: smartlead.NewLimiter(rate.Inf, 1)})
			if err != nil {
				t.Fatal(err)
			}
			recorder := events.NewFakeRecorder(10)
			f.r.Smartlead, f.r.Recorder, f.r.Clock, f.r.Deadline = staticProvider{sc}, recorder, clockAt(f.now), tc.deadline
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := f.r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "fleet", Name: "default"}})
			if ctx.Err() != nil {
				t.Fatalf("the sync was still running after 30 s (%d pages read)", requests.Load())
			}
			if err != nil || res.RequeueAfter != syncRetry {
				t.Fatalf("result %+v, %v; want a retry after %s", res, err, syncRetry)
			}
			if n := requests.Load(); n > smartlead.MaxPages {
				t.Fatalf("%d pages read, more than %d", n, smartlead.MaxPages)
			}
			p := f.policy(t)
			if !strings.Contains(p.Status.LastSyncError, tc.want) || p.Status.LastSyncTime != nil {
				t.Fatalf("status.lastSyncError %q (lastSyncTime %v), want one saying %q", p.Status.LastSyncError, p.Status.LastSyncTime, tc.want)
			}
			select {
			case e := <-recorder.Events:
				if !strings.Contains(e, bgv1.EventSyncFailed) || !strings.Contains(e, tc.want) {
					t.Fatalf("event %q", e)
				}
			default:
				t.Fatal("no Warning Event")
			}
		})
	}
}
