package system_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv/tenant"
)

// startShardReplica runs a leader-elected manager replica of the shard tenant.ShardLabel=shard, lease id, and returns
// what kills it: its context is cancelled without releasing the lease, as when a pod dies, so the next
// leader waits for the lease to expire.
func startShardReplica(shard, id string) (kill func()) {
	opts := manager.Options{ReceiverBindAddress: "0", WatchLabelSelector: tenant.ShardLabel + "=" + shard,
		SmartleadOptions: smartlead.Options{Backoff: 50 * time.Millisecond}}
	mgr, err := env.NewReplica(opts.CacheOptions(), id, 3*time.Second)
	Expect(err).NotTo(HaveOccurred())
	Expect(manager.Setup(mgr, opts)).To(Succeed())
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		if err := mgr.Start(rctx); rctx.Err() == nil {
			Expect(err).NotTo(HaveOccurred())
		}
	}()
	var once sync.Once
	kill = func() { once.Do(func() { cancel(); <-done }) }
	DeferCleanup(kill)
	return kill
}

// leaseHolder is who holds the lease, "" when nobody does yet.
func leaseHolder(id string) func() string {
	return func() string {
		var l coordinationv1.Lease
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: id}, &l); err != nil {
			return ""
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
}

var _ = Describe("the leader killed between two steps of a pause", func() {
	It("the next leader finishes the pause from the recorded campaigns, once: none forgotten, nothing restored", func() {
		const lease = "bounceguard-failover-test"
		killFirst := startShardReplica("failover", lease)
		Eventually(leaseHolder(lease)).WithTimeout(20 * time.Second).ShouldNot(BeEmpty())
		first := leaseHolder(lease)()
		startShardReplica("failover", lease)

		f := tenant.NewIn(map[string]string{tenant.ShardLabel: "failover"}, bgv1.ModeEnforce, tenant.LongCooldown,
			func(s *bgv1.ProtectionPolicySpec) { s.Smartlead.PauseAction = bgv1.PauseActionRemoveFromCampaigns })
		id := f.SL.AddAccount("fran@acme.com")
		c1 := f.SL.AddCampaign("DRAFTED", id)
		c2 := f.SL.AddCampaign("DRAFTED", id)
		c3 := f.SL.AddCampaign("PAUSED", id)
		mb := f.Mailbox("fran@acme.com", id)
		// The second removal fails until the first leader is gone: it is stuck between steps one and two.
		f.SL.Inject(standin.Fault{Count: -1, Code: http.StatusServiceUnavailable, Method: http.MethodDelete,
			PathPrefix: fmt.Sprintf("/campaigns/%d/", c2)})
		tenant.Record(mb, 60, 3)
		tenant.Record(mb, 0, 2)
		Eventually(tenant.Health(mb)).Should(Equal(bgv1.HealthPaused))
		removal := func(c int64) string {
			return fmt.Sprintf(`DELETE /campaigns/%d/email-accounts {"email_account_ids":[%d]}`, c, id)
		}
		Eventually(func() []string { return f.SL.CallStrings() }).Should(ContainElement(removal(c2)))
		Expect(f.Campaign(c1).AccountIDs).To(BeEmpty(), "step one done before the kill")

		By("killing the leader; Smartlead recovers while nobody leads")
		killFirst()
		f.SL.ClearFaults()
		Eventually(leaseHolder(lease)).WithTimeout(20 * time.Second).ShouldNot(Equal(first))

		Eventually(tenant.Condition(mb, bgv1.ConditionPaused)).WithTimeout(20 * time.Second).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mb.Status.Smartlead.RemovedCampaignIDs).To(ConsistOf(c1, c2, c3))
		for _, c := range []int64{c1, c2, c3} {
			Expect(f.Campaign(c).AccountIDs).To(BeEmpty())
		}
		var done []string // successful calls
		for _, c := range f.SL.Calls() {
			if c.Code == http.StatusOK {
				done = append(done, c.String())
			}
		}
		for _, c := range []int64{c1, c2, c3} {
			Expect(done).To(ContainElement(removal(c)))
		}
		// The campaign list is read once, by the first leader, and recorded before its first removal; the
		// next leader works from that record (it does not read the list again, which would no longer hold
		// c1). It removes the recorded campaigns again from the start: removals are idempotent, and a
		// removal that failed is so never forgotten (the account would then be suspended instead).
		all := f.SL.CallStrings()
		Expect(countOf(all, fmt.Sprintf("GET /email-accounts/%d?fetch_campaigns=true", id))).To(Equal(1), "%v", all)
		Expect(countOf(done, removal(c2))).To(Equal(1), "%v", all)
		Expect(countOf(done, removal(c3))).To(Equal(1), "%v", all)
		Expect(countOf(done, removal(c1))).To(BeNumerically("<=", 2), "%v", all)
		for _, c := range all {
			Expect(c).NotTo(HavePrefix("POST"), "nothing restored during a pause: %v", all)
			Expect(c).NotTo(HavePrefix("PUT /email-accounts/suspend"), "no removal failed for good: no suspension: %v", all)
		}

		var events corev1.EventList
		Expect(k8s.List(ctx, &events, client.InNamespace(f.NS))).To(Succeed())
		paused := 0
		for _, e := range events.Items {
			if e.Reason == bgv1.EventPausedInSmartlead && e.InvolvedObject.Name == mb.Name {
				paused += int(max(e.Count, 1))
			}
		}
		Expect(paused).To(Equal(1), "one pause, one Event")
	})
})

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
