// Package system_test holds the slow system tests, in one Ginkgo suite whose BeforeSuite starts a real API
// server (envtest) and the bounceguard process through manager.Setup (tenant.Start): real Smartlead traffic
// end to end through that manager, a Smartlead outage, the leader killed between two steps of a pause; the
// specs that start managers of their own (several replicas, shards, an API-server outage, a receiver
// stopped mid-load, hostile compositions at the receiver); and the benchmarks of docs/benchmarks.md, which
// start their own control plane. The fast loop (`go test ./internal/... ./controllers/...
// ./webhookreceiver/...`) leaves them out; `make test` (`go test ./...`) runs them.
package system_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

var (
	env *testenv.Env
	k8s client.Client
	ctx context.Context
)

// TestSystem runs the system suite: envtest and the whole process (manager.Setup), with the receiver,
// replicas, shards, outages, failover, real traffic and load.
func TestSystem(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "System suite")
}

// The suite's manager (tenant.Start) serves the specs that use a tenant.Fixture; the specs that start
// managers of their own (replicas, shards, an outage, a receiver stopped mid-load) create their namespaces
// with tenant.ShardLabel, which keeps the suite's manager out of them.
var _ = BeforeSuite(func() {
	tenant.Start()
	env, k8s, ctx = tenant.Env, tenant.Client, tenant.Ctx
})

var _ = AfterSuite(tenant.Stop)

// freeAddr returns a loopback address with a port that is free now.
func freeAddr() string {
	ln, err := netListen()
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

// startManager runs a bounceguard manager with its receiver on addr until the returned stop is called;
// stop waits for the manager to finish.
func startManager(addr string, batchWindow time.Duration) (stop func()) {
	mgr, err := env.NewManager((&manager.Options{}).CacheOptions())
	Expect(err).NotTo(HaveOccurred())
	return runManager(mgr, addr, batchWindow)
}

// runManager sets bounceguard up in mgr with its receiver on addr, starts it, and waits until the
// receiver answers; the returned stop waits for the manager to finish.
func runManager(mgr ctrl.Manager, addr string, batchWindow time.Duration) (stop func()) {
	return runManagerWith(mgr, manager.Options{ReceiverBindAddress: addr, ReceiverMaxBody: 1 << 20,
		ReceiverBatchWindow: batchWindow})
}

// runManagerWith is runManager with the given options (ReceiverBindAddress must be set).
func runManagerWith(mgr ctrl.Manager, opts manager.Options) (stop func()) {
	addr := opts.ReceiverBindAddress
	Expect(manager.Setup(mgr, opts)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Eventually(func() error {
		resp, err := http.Get("http://" + addr + "/healthz-probe")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}, 30*time.Second, 20*time.Millisecond).Should(Succeed())
	return func() {
		cancel()
		<-done
	}
}

// newTenant creates a namespace with a signed policy for a fresh organization and n mailboxes.
func newTenant(org, secret string, n int, mutate func(*bgv1.ProtectionPolicy)) (ns string, emails []string) {
	return newTenantIn(nil, org, secret, n, mutate)
}

// newTenantIn is newTenant in a namespace with the given labels.
func newTenantIn(labels map[string]string, org, secret string, n int, mutate func(*bgv1.ProtectionPolicy)) (ns string, emails []string) {
	ns, emails, p := createTenant(labels, org, secret, n, mutate)
	// Wait until the manager's cache (which the receiver reads) has the policy and the mailboxes: their
	// controllers have then recorded the generation they saw.
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
		var list bgv1.MailboxList
		g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		for _, mb := range list.Items {
			g.Expect(mb.Status.ObservedGeneration).To(Equal(mb.Generation))
		}
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
	return ns, emails
}

// ownManagers labels the namespace of a spec that runs managers of its own: the suite's manager
// (tenant.Start) leaves it to them.
var ownManagers = map[string]string{tenant.ShardLabel: "own-managers"}

// createTenant creates what newTenantIn does, without waiting for a manager to see it; without labels,
// the namespace has ownManagers'.
func createTenant(labels map[string]string, org, secret string, n int, mutate func(*bgv1.ProtectionPolicy)) (
	ns string, emails []string, p *bgv1.ProtectionPolicy) {
	if labels == nil {
		labels = ownManagers
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rcv-", Labels: labels}}
	Expect(k8s.Create(context.Background(), nsObj)).To(Succeed())
	ns = nsObj.Name
	Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns},
		StringData: map[string]string{"webhookSecret": secret}})).To(Succeed())
	p = &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec: bgv1.ProtectionPolicySpec{Smartlead: bgv1.SmartleadSettings{OrganizationID: org,
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}}}}
	if mutate != nil {
		mutate(p)
	}
	Expect(k8s.Create(context.Background(), p)).To(Succeed())
	for i := range n {
		email := fmt.Sprintf("sender%d@d%d.example.com", i, i%7)
		emails = append(emails, email)
		Expect(k8s.Create(context.Background(), &bgv1.Mailbox{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sender%d", i), Namespace: ns},
			Spec:       bgv1.MailboxSpec{Email: email}})).To(Succeed())
	}
	return ns, emails, p
}
