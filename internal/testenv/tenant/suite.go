// Package tenant runs one bounceguard manager for a Ginkgo suite (Start, Stop) and gives each spec a
// tenant of its own against it: a namespace, an API key and webhook Secret, a stand-in Smartlead and a
// policy (Fixture), with the waits and writes the specs share. The controllers suite and the system tests
// (test/system) both use it; it needs Ginkgo and Gomega, so only tests import it.
package tenant

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:staticcheck // ST1001: the Ginkgo DSL, dot-imported as in every suite
	. "github.com/onsi/gomega"    //nolint:staticcheck // ST1001: the Gomega matchers, dot-imported as in every suite
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// ShardLabel keeps the suite's manager out of the namespaces a spec labels with it: those it runs
// managers (replicas, shards) of its own for.
const ShardLabel = "bounceguard.io/shard"

var (
	// Env is the suite's control plane (set by Start).
	Env *testenv.Env
	// Client is Env's direct client.
	Client client.Client
	// Ctx lives until Stop.
	Ctx context.Context
	// Logs captures everything the process logs, to check that no secret reaches a log line.
	Logs = &SyncBuffer{}
	// ReceiverURL is the suite manager's webhook receiver (real HTTP), e.g. http://127.0.0.1:41234.
	ReceiverURL string

	cancel context.CancelFunc
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start is a suite's BeforeSuite: it starts envtest and the bounceguard process through manager.Setup,
// with its receiver on a free loopback port, acting with exactly the generated ClusterRole's rights
// (every spec also proves they are enough), on every namespace not labelled with ShardLabel. Eventually
// waits 10 s by default, polling every 20 ms.
func Start() {
	SetDefaultEventuallyTimeout(10 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, Logs)), zap.UseDevMode(true)))
	var err error
	Env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	Client = Env.Client

	asManager, err := Env.AsManager(context.Background())
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	ReceiverURL = "http://" + addr
	opts := manager.Options{ReceiverBindAddress: addr, ReceiverMaxBody: 1 << 20,
		ReceiverMaxEventAge: 2 * time.Hour, ReceiverBatchWindow: 2 * time.Millisecond,
		WatchLabelSelector: "!" + ShardLabel,
		SmartleadOptions:   smartlead.Options{Backoff: 50 * time.Millisecond},
		NotifyBackoff:      100 * time.Millisecond}
	mgr, err := Env.NewManagerWith(asManager, opts.CacheOptions())
	Expect(err).NotTo(HaveOccurred())
	Expect(manager.Setup(mgr, opts)).To(Succeed())
	Ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(Ctx)).To(Succeed())
	}()
	Eventually(func() error {
		resp, err := http.Get(ReceiverURL + "/ready-probe")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// Stop is a suite's AfterSuite: it stops the manager and the control plane.
func Stop() {
	if cancel != nil {
		cancel()
	}
	if Env != nil {
		Expect(Env.Stop()).To(Succeed())
	}
}
