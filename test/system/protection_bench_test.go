package system_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// percentiles returns p50 and p99 of a set of durations.
func percentiles(d []time.Duration) (time.Duration, time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkGate measures GET /v1/gate answered from the informer cache, bearer token checked against
// every gated policy (the tenant's and 50 others'): in-process (the handler alone), over loopback HTTP,
// and, as the baseline in the same run, the three uncached API reads (mailbox, policy, domain) the gate
// would need without the cache. Run it with `make bench`.
func BenchmarkGate(b *testing.B) {
	rb, stop := startBench(b)
	defer stop()
	env := rb.env
	const n, requests = 1000, 20000
	ns, emails := rb.tenant("gate-bench", n)
	for i := range 50 { // other tenants with gate tokens of their own: every request compares them all
		ons := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gate-other-"}}
		must(b, env.Client.Create(context.Background(), ons))
		must(b, env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gate", Namespace: ons.Name},
			StringData: map[string]string{"token": fmt.Sprintf("other-token-%d", i)}}))
		must(b, env.Client.Create(context.Background(), &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ons.Name},
			Spec: bgv1.ProtectionPolicySpec{Gate: bgv1.GateSettings{TokenSecretRef: &bgv1.SecretKeySelector{Name: "gate", Key: "token"}}}}))
	}
	gateRequest := func(target string) *http.Request {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+benchGateToken)
		return req
	}
	// Let the mailbox controller create the domains, so that every answer looks one up.
	waitFor(b, func() bool {
		var domains bgv1.DomainList
		must(b, env.Client.List(context.Background(), &domains, client.InNamespace(ns)))
		return len(domains.Items) == 50
	})

	mgr, err := env.NewManager((&manager.Options{}).CacheOptions())
	if err != nil {
		b.Fatal(err)
	}
	if err := index.AddIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = mgr.Start(ctx) }()
	mgr.GetCache().WaitForCacheSync(ctx)
	secrets, err := manager.WatchSecrets(mgr)
	if err != nil {
		b.Fatal(err)
	}
	gateServer := &webhookreceiver.Server{Client: mgr.GetClient(), Secrets: secrets}
	secrets.Subscribe(gateServer.SecretChanged())
	handler := gateServer.Handler()
	waitFor(b, func() bool {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, gateRequest("/v1/gate?mailbox="+emails[n-1]))
		return rec.Code == http.StatusOK
	})

	inProcess := make([]time.Duration, requests)
	for i := range requests {
		req := gateRequest("/v1/gate?mailbox=" + emails[i%n])
		rec := httptest.NewRecorder()
		t0 := time.Now()
		handler.ServeHTTP(rec, req)
		inProcess[i] = time.Since(t0)
		if rec.Code != http.StatusOK {
			b.Fatalf("gate answered %d: %s", rec.Code, rec.Body)
		}
	}
	overHTTP := make([]time.Duration, requests)
	for i := range requests {
		t0 := time.Now()
		req, _ := http.NewRequest(http.MethodGet, "http://"+rb.batchedAddr+"/v1/gate?mailbox="+emails[i%n], nil)
		req.Header.Set("Authorization", "Bearer "+benchGateToken)
		resp, err := httpClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = resp.Body.Read(make([]byte, 512))
		resp.Body.Close()
		overHTTP[i] = time.Since(t0)
	}
	const baselineRequests = 2000
	uncached := make([]time.Duration, baselineRequests)
	for i := range baselineRequests {
		t0 := time.Now()
		var mb bgv1.Mailbox
		var p bgv1.ProtectionPolicy
		var d bgv1.Domain
		must(b, env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("m%d", i%n)}, &mb))
		must(b, env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "default"}, &p))
		must(b, env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: mb.Domain()}, &d))
		uncached[i] = time.Since(t0)
	}
	p50, p99 := percentiles(inProcess)
	h50, h99 := percentiles(overHTTP)
	u50, u99 := percentiles(uncached)
	b.Logf("gate in-process:        p50 %7.1fµs  p99 %7.1fµs  (%d requests, %d mailboxes)", us(p50), us(p99), requests, n)
	b.Logf("gate over loopback HTTP: p50 %7.1fµs  p99 %7.1fµs", us(h50), us(h99))
	b.Logf("baseline, 3 uncached API reads: p50 %7.1fµs  p99 %7.1fµs", us(u50), us(u99))
	b.Logf("uncached / cached (in-process) at p99 = %.0fx", float64(u99)/float64(p99))
	b.ReportMetric(us(p99), "gate-p99-µs")
	b.ReportMetric(us(h99), "gate-http-p99-µs")
	b.ReportMetric(us(u99), "uncached-p99-µs")
}

// BenchmarkTimeToPause measures detection to enforcement end to end: from posting the webhook that
// crosses a mailbox's pause threshold (signed, over HTTP) to the stand-in Smartlead receiving the suspend
// call, with the whole manager (receiver, controllers) on a real API server. Baseline in the same run:
// one raw status write to the API server.
func BenchmarkTimeToPause(b *testing.B) {
	rb, stop := startBench(b)
	defer stop()
	env := rb.env

	const trials = 40
	sl := standin.New("bench-api-key", "/api/v1")
	srv := httptest.NewServer(sl)
	defer srv.Close()
	ns, emails := rb.tenant("pause-bench", trials)
	c := env.Client
	ctx := context.Background()
	must(b, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		StringData: map[string]string{"apiKey": "bench-api-key"}}))
	ids := make(map[int64]int, trials)
	for i, email := range emails {
		id := sl.AddAccount(email)
		ids[id] = i
		var mb bgv1.Mailbox
		must(b, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("m%d", i)}, &mb))
		mb.Spec.SmartleadAccountID = ptr.To(id)
		must(b, c.Update(ctx, &mb))
	}
	var p bgv1.ProtectionPolicy
	must(b, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "default"}, &p))
	p.Spec.Mode = bgv1.ModeEnforce
	p.Spec.Smartlead.BaseURL = srv.URL + "/api/v1"
	p.Spec.Smartlead.APIKeySecretRef = &bgv1.SecretKeySelector{Name: "api", Key: "apiKey"}
	p.Spec.Safety = bgv1.SafetyRules{MaxPausedPercent: 100, MinimumMailboxes: 1000}
	must(b, c.Update(ctx, &p))

	deliverAll := func(email string, from, sends, bounces int) {
		for i := range sends + bounces {
			w := sendEvent(email, from+i, i >= sends)
			if _, err := deliverUntilAcknowledged(func() string { return rb.batchedAddr }, "pause-bench", "bench-secret", w,
				time.Now().Add(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	}
	var lat []time.Duration
	for i, email := range emails {
		deliverAll(email, 0, 100, 4)       // one bounce short of 5/100
		time.Sleep(250 * time.Millisecond) // stay under the key's 5 requests/s so the limiter is not measured
		before := len(sl.Calls())
		t0 := time.Now()
		deliverAll(email, 1000, 0, 1)
		waitFor(b, func() bool { return len(sl.Calls()) > before })
		call := sl.Calls()[before]
		if call.Method != http.MethodPut || ids[mustID(b, call.Path)] != i {
			b.Fatalf("unexpected call %s", call)
		}
		lat = append(lat, call.At.Sub(t0))
	}
	raw := make([]time.Duration, 200)
	var mb bgv1.Mailbox
	must(b, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "m0"}, &mb))
	for i := range raw {
		mb.Status.SoftBounced++
		t0 := time.Now()
		must(b, c.Status().Update(ctx, &mb))
		raw[i] = time.Since(t0)
	}
	p50, p99 := percentiles(lat)
	r50, _ := percentiles(raw)
	b.Logf("time to pause (webhook -> Smartlead suspend): p50 %6.1fms  p99 %6.1fms  max %6.1fms  (%d mailboxes)",
		ms(p50), ms(p99), ms(lat[len(lat)-1]), trials)
	b.Logf("baseline, one raw status write: p50 %6.2fms; time to pause p50 = %.1f status writes", ms(r50), float64(p50)/float64(r50))
	b.ReportMetric(ms(p50), "pause-p50-ms")
	b.ReportMetric(ms(p99), "pause-p99-ms")
	b.ReportMetric(float64(p50)/float64(r50), "pause-p50/status-write")
}

func mustID(b *testing.B, path string) int64 {
	var id int64
	if _, err := fmt.Sscanf(path, "/email-accounts/suspend/%d", &id); err != nil {
		b.Fatalf("unexpected call path %s", path)
	}
	return id
}

func waitFor(b *testing.B, cond func() bool) {
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			b.Fatal("condition not met within a minute")
		}
	}
}
