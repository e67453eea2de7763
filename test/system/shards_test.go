package system_test

import (
	"context"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
)

// startShard runs a leader-elected manager of the shard selector, with its receiver on addr.
func startShard(addr, selector string) (stop func()) {
	opts := manager.Options{ReceiverBindAddress: addr, ReceiverMaxBody: 1 << 20, ReceiverBatchWindow: 2 * time.Millisecond,
		WatchLabelSelector: selector}
	// Each shard on the lease its selector names: were they one lease, one shard would have no leader.
	mgr, err := env.NewReplica(opts.CacheOptions(), opts.LeaderElectionID(), 4*time.Second)
	Expect(err).NotTo(HaveOccurred())
	return runManagerWith(mgr, opts)
}

var _ = Describe("two shards splitting a fleet by namespace label", func() {
	It("each takes only its own namespaces' webhooks and reconciles only their objects, with exact tallies", func() {
		addrA, addrB := freeAddr(), freeAddr()
		DeferCleanup(startShard(addrA, "bounceguard.io/shard=a"))
		DeferCleanup(startShard(addrB, "bounceguard.io/shard=b"))
		// newTenantIn waits for the policy and mailboxes to be reconciled: by the shard's own leader.
		nsA, emailsA := newTenantIn(map[string]string{"bounceguard.io/shard": "a"}, "org-shard-a", "s-a", 4, nil)
		nsB, emailsB := newTenantIn(map[string]string{"bounceguard.io/shard": "b"}, "org-shard-b", "s-b", 4, nil)

		type delivery struct {
			addr, org, secret string
			w                 webhook
		}
		var plan []delivery
		want := map[string]map[string][2]int64{nsA: {}, nsB: {}}
		for i := range 240 {
			ns, emails, addr, org, secret := nsA, emailsA, addrA, "org-shard-a", "s-a"
			if i%2 == 1 {
				ns, emails, addr, org, secret = nsB, emailsB, addrB, "org-shard-b", "s-b"
			}
			sender := emails[(i/2)%len(emails)]
			bounce := i%5 == 0
			w := sendEvent(sender, i, bounce)
			plan = append(plan, delivery{addr, org, secret, w})
			if i%4 < 2 {
				plan = append(plan, delivery{addr, org, secret, w}) // Smartlead's retry
			}
			count(want[ns], sender, bounce)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(plan))
		for c := range 16 {
			wg.Go(func() {
				for i := c; i < len(plan); i += 16 {
					d := plan[i]
					if _, err := deliverUntilAcknowledged(func() string { return d.addr }, d.org, d.secret, d.w,
						time.Now().Add(time.Minute)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			Fail(err.Error())
		}
		Expect(tallies(nsA)).To(Equal(want[nsA]))
		Expect(tallies(nsB)).To(Equal(want[nsB]))

		By("refusing the other shard's organization: it is unknown here, and nothing is counted")
		code, answer, err := deliver(addrB, "org-shard-a", "s-a", sendEvent(emailsA[0], 10_000, true))
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusUnauthorized), answer)
		Expect(answer).To(ContainSubstring("unknown organization"))
		Expect(tallies(nsA)).To(Equal(want[nsA]))

		By("each policy's status counted by its own shard's leader")
		for _, ns := range []string{nsA, nsB} {
			Eventually(func(g Gomega) {
				var p bgv1.ProtectionPolicy
				g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "default"}, &p)).To(Succeed())
				g.Expect(p.Status.Mailboxes).To(Equal(int32(4)))
			}).WithTimeout(20 * time.Second).Should(Succeed())
		}
		var leases coordinationv1.LeaseList
		Expect(k8s.List(context.Background(), &leases, client.InNamespace("default"))).To(Succeed())
		names := map[string]bool{}
		for _, l := range leases.Items {
			names[l.Name] = true
		}
		for _, sel := range []string{"bounceguard.io/shard=a", "bounceguard.io/shard=b"} {
			id := (&manager.Options{WatchLabelSelector: sel}).LeaderElectionID()
			Expect(names).To(HaveKey(id), "a lease of its own for %s", sel)
		}

		By("a namespace labelled into a shard later is taken up by it")
		nsC, _, _ := createTenant(map[string]string{"bounceguard.io/shard": "none-yet"}, "org-shard-c", "s-c", 0, nil)
		var nsObj corev1.Namespace
		Expect(k8s.Get(context.Background(), client.ObjectKey{Name: nsC}, &nsObj)).To(Succeed())
		code, _, err = deliver(addrB, "org-shard-c", "s-c", sendEvent("x@c.example.com", 1, false))
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusUnauthorized))
		nsObj.Labels["bounceguard.io/shard"] = "b"
		Expect(k8s.Update(context.Background(), &nsObj)).To(Succeed())
		// The sender has no Mailbox yet: the shard's receiver discovers it (autoDiscover, the default) once
		// the namespace is its own.
		_, err = deliverUntilAcknowledged(func() string { return addrB }, "org-shard-c", "s-c",
			sendEvent("x@c.example.com", 2, true), time.Now().Add(time.Minute))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			var p bgv1.ProtectionPolicy
			g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: nsC, Name: "default"}, &p)).To(Succeed())
			g.Expect(p.Status.ObservedGeneration).To(Equal(p.Generation))
			g.Expect(p.Status.Mailboxes).To(Equal(int32(1)))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(tallies(nsC)).To(Equal(map[string][2]int64{"x@c.example.com": {0, 1}}))
	})
})
