package system_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// benchResult is one load run.
type benchResult struct {
	events        int
	elapsed       time.Duration
	p50, p99      time.Duration
	writes        float64
	exact         bool
	failedToCount int
}

func (r benchResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// BenchmarkReceiver measures the receiver end to end: signed Smartlead-shaped webhooks over real HTTP
// from concurrent clients, into a manager whose status writes go to a real API server (envtest).
// It needs KUBEBUILDER_ASSETS (run it with `make bench`); each scenario runs once per invocation.
func BenchmarkReceiver(b *testing.B) {
	bench, stop := startBench(b)
	defer stop()

	const events, clients, hotClients = 6000, 64, 256
	ceiling := bench.rawWrites(1000, clients, events)
	b.Logf("raw status writes (ceiling): %.0f writes/s", ceiling)

	report := func(name string, r benchResult) {
		b.Logf("%-28s %7.0f events/s  p50 %6.1fms  p99 %6.1fms  %.3f writes/event  exact=%v",
			name, r.rate(), ms(r.p50), ms(r.p99), r.writes/float64(r.events), r.exact)
		if !r.exact {
			b.Errorf("%s: final tallies are not exact (%d mailboxes off)", name, r.failedToCount)
		}
	}
	uniformB := bench.load("uniform-batched", bench.batchedAddr, 1000, clients, events, 0)
	report("uniform 1000, batched", uniformB)
	uniformU := bench.load("uniform-unbatched", bench.unbatchedAddr, 1000, clients, events, 0)
	report("uniform 1000, unbatched", uniformU)
	hotB := bench.load("hot-batched", bench.batchedAddr, 10, hotClients, events, 0)
	report("hot 10, batched", hotB)
	hotU := bench.load("hot-unbatched", bench.unbatchedAddr, 10, hotClients, events/4, 0)
	report("hot 10, unbatched", hotU)
	half := bench.load("uniform-half-peak", bench.batchedAddr, 1000, clients, events/2, uniformB.rate()/2)
	report("uniform 1000, batched @50%", half)

	b.Logf("hot batched / unbatched = %.1fx; uniform batched / raw ceiling = %.0f%%",
		hotB.rate()/hotU.rate(), 100*uniformB.rate()/ceiling)
	b.ReportMetric(ceiling, "ceiling-writes/s")
	b.ReportMetric(uniformB.rate(), "uniform-events/s")
	b.ReportMetric(hotB.rate()/hotU.rate(), "hot-speedup")
	b.ReportMetric(100*uniformB.rate()/ceiling, "uniform-%-of-ceiling")
	b.ReportMetric(ms(half.p99), "p99-ms@half-peak")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startBench starts envtest and one manager with the receivers (see receiverBench.start); the returned
// function stops both. Benchmarks skip without KUBEBUILDER_ASSETS.
func startBench(b *testing.B) (*receiverBench, func()) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Skip("KUBEBUILDER_ASSETS not set; run `make bench`")
	}
	ctrllog.SetLogger(logr.Discard())
	env, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	rb := &receiverBench{b: b, env: env}
	rb.start()
	return rb, func() { rb.stop(); _ = env.Stop() }
}

type receiverBench struct {
	b                          *testing.B
	env                        *testenv.Env
	batchedAddr, unbatchedAddr string
	cancel                     context.CancelFunc
	done                       chan struct{}
}

// start runs one manager with the batched receiver (2 ms window) and a second, unbatched receiver.
func (rb *receiverBench) start() {
	rb.batchedAddr, rb.unbatchedAddr = benchAddr(rb.b), benchAddr(rb.b)
	mgr, err := rb.env.NewManager((&manager.Options{}).CacheOptions())
	if err != nil {
		rb.b.Fatal(err)
	}
	if err := manager.Setup(mgr, manager.Options{ReceiverBindAddress: rb.batchedAddr,
		ReceiverMaxBody: 1 << 20, ReceiverBatchWindow: 2 * time.Millisecond}); err != nil {
		rb.b.Fatal(err)
	}
	unbatched := &webhookreceiver.Server{Addr: rb.unbatchedAddr, MaxBody: 1 << 20, Client: mgr.GetClient(),
		Committer:        webhookreceiver.NewCommitter(mgr.GetClient(), mgr.GetAPIReader(), 0),
		WaitForCacheSync: mgr.GetCache().WaitForCacheSync, Log: mgr.GetLogger()}
	if err := mgr.Add(unbatched); err != nil {
		rb.b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb.cancel, rb.done = cancel, make(chan struct{})
	go func() { defer close(rb.done); _ = mgr.Start(ctx) }()
	for _, addr := range []string{rb.batchedAddr, rb.unbatchedAddr} {
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				break
			}
			if time.Since(start) > time.Minute {
				rb.b.Fatal("receiver did not start")
			}
		}
	}
}

func (rb *receiverBench) stop() { rb.cancel(); <-rb.done }

func benchAddr(b *testing.B) string {
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tenant creates a namespace, a signed policy for org and n mailboxes; it waits until the manager's
// cache has them all.
// benchGateToken is the gate token of every benchmark tenant.
const benchGateToken = "bench-gate-token"

func (rb *receiverBench) tenant(org string, n int) (string, []string) {
	ctx := context.Background()
	c := rb.env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	must(rb.b, c.Create(ctx, ns))
	must(rb.b, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns.Name},
		StringData: map[string]string{"webhookSecret": "bench-secret", "gateToken": benchGateToken}}))
	must(rb.b, c.Create(ctx, &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name},
		Spec: bgv1.ProtectionPolicySpec{AutoDiscover: ptr.To(false), Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}},
			Gate: bgv1.GateSettings{TokenSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "gateToken"}}}}))
	emails := make([]string, n)
	parallel(32, n, func(i int) {
		emails[i] = fmt.Sprintf("m%d@d%d.bench.io", i, i%50)
		must(rb.b, c.Create(ctx, &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("m%d", i), Namespace: ns.Name},
			Spec: bgv1.MailboxSpec{Email: emails[i]}}))
	})
	// Wait until the controllers have written every new mailbox's first status, so that the measured
	// run does not compete with that one-off burst of writes.
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(200 * time.Millisecond) {
		var list bgv1.MailboxList
		must(rb.b, c.List(ctx, &list, client.InNamespace(ns.Name)))
		settled := 0
		for _, mb := range list.Items {
			if mb.Status.ObservedGeneration == mb.Generation {
				settled++
			}
		}
		if settled == n {
			break
		}
	}
	return ns.Name, emails
}

// load sends events signed webhooks from clients concurrent clients, spread round-robin over n fresh
// mailboxes; with rate > 0 it paces them open-loop at that many per second.
func (rb *receiverBench) load(org, addr string, n, clients, events int, rate float64) benchResult {
	ns, emails := rb.tenant(org, n)
	writesBefore := testenv.Counter("bounceguard_receiver_status_writes_total", "result", "ok")
	lat := make([]time.Duration, events)
	start := time.Now()
	parallel(clients, events, func(i int) {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		w := sendEvent(emails[i%n], i, false)
		t0 := time.Now()
		if _, err := deliverUntilAcknowledged(func() string { return addr }, org, "bench-secret", w, time.Now().Add(time.Minute)); err != nil {
			rb.b.Error(err)
		}
		lat[i] = time.Since(t0)
	})
	elapsed := time.Since(start)
	writes := testenv.Counter("bounceguard_receiver_status_writes_total", "result", "ok") - writesBefore
	slices.Sort(lat)
	r := benchResult{events: events, elapsed: elapsed, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], writes: writes, exact: true}
	var list bgv1.MailboxList
	must(rb.b, rb.env.Client.List(context.Background(), &list, client.InNamespace(ns)))
	per := map[string]int64{}
	for i := range events {
		per[emails[i%n]]++
	}
	for _, mb := range list.Items {
		if mb.Status.Sent != per[mb.Spec.Email] {
			r.exact = false
			r.failedToCount++
		}
	}
	return r
}

// rawWrites measures the API server's status-write ceiling: clients writers each updating the status of
// their own share of n mailboxes, count writes in all, with no receiver in the way.
func (rb *receiverBench) rawWrites(n, clients, count int) float64 {
	ns, _ := rb.tenant("raw-ceiling", n)
	var list bgv1.MailboxList
	must(rb.b, rb.env.Client.List(context.Background(), &list, client.InNamespace(ns)))
	copies := make([]*bgv1.Mailbox, len(list.Items))
	locks := make([]sync.Mutex, len(list.Items))
	for i := range list.Items {
		copies[i] = &list.Items[i]
	}
	start := time.Now()
	parallel(clients, count, func(i int) {
		j := i % len(copies)
		locks[j].Lock()
		defer locks[j].Unlock()
		for {
			copies[j].Status.Sent++
			err := rb.env.Client.Status().Update(context.Background(), copies[j])
			if !apierrors.IsConflict(err) {
				must(rb.b, err)
				return
			}
			must(rb.b, rb.env.Client.Get(context.Background(), client.ObjectKeyFromObject(copies[j]), copies[j]))
		}
	})
	return float64(count) / time.Since(start).Seconds()
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(workers, n int, fn func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// must reports an error; it is safe to call from the load goroutines (it does not stop the benchmark).
func must(b *testing.B, err error) {
	if err != nil {
		b.Error(err)
	}
}
