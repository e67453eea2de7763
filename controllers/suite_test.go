package controllers_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

var (
	env    *testenv.Env
	k8s    client.Client
	ctx    context.Context
	cancel context.CancelFunc
	// logs captures everything the manager logs, to check that no secret reaches a log line.
	logs = &syncBuffer{}
	// receiverURL is the manager's webhook receiver (real HTTP), e.g. http://127.0.0.1:41234.
	receiverURL string
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(10 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	RunSpecs(t, "Controllers suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client

	// The manager runs with exactly the generated ClusterRole's rights: every test also proves it is enough.
	asManager, err := env.AsManager(context.Background())
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	receiverURL = "http://" + addr
	opts := manager.Options{ReceiverBindAddress: addr, ReceiverMaxBody: 1 << 20,
		ReceiverMaxEventAge: 2 * time.Hour, ReceiverBatchWindow: 2 * time.Millisecond,
		// Every namespace but those a test labels into a shard of its own (failover_test.go).
		WatchLabelSelector: "!" + shardLabel,
		SmartleadOptions:   smartlead.Options{Backoff: 50 * time.Millisecond},
		NotifyBackoff:      100 * time.Millisecond}
	mgr, err := env.NewManagerWith(asManager, opts.CacheOptions())
	Expect(err).NotTo(HaveOccurred())
	Expect(manager.Setup(mgr, opts)).To(Succeed())
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(func() error {
		resp, err := http.Get(receiverURL + "/ready-probe")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}).WithTimeout(30 * time.Second).Should(Succeed())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
