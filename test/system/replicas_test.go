package system_test

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bounceguard/bounceguard/internal/manager"
)

// startReplica runs one of several manager replicas electing a leader under id; every replica serves
// the receiver.
func startReplica(addr, id string) (stop func()) {
	mgr, err := env.NewReplica((&manager.Options{}).CacheOptions(), id, 4*time.Second)
	Expect(err).NotTo(HaveOccurred())
	return runManager(mgr, addr, 2*time.Millisecond)
}

var _ = Describe("three replicas taking one stream", func() {
	It("count every event exactly once, with duplicates delivered to other replicas than the originals", func() {
		var addrs []string
		for range 3 {
			addr := freeAddr()
			addrs = append(addrs, addr)
			stop := startReplica(addr, "bounceguard-replicas-test")
			DeferCleanup(stop)
		}
		ns, emails := newTenant("org-replicas", "s-rep", 6, nil)
		const total, dups = 600, 150
		want := map[string][2]int64{}
		type delivery struct {
			w       webhook
			replica int
		}
		var plan []delivery
		for i := range total {
			sender := emails[i%len(emails)]
			bounce := i%7 == 0
			w := sendEvent(sender, i, bounce)
			plan = append(plan, delivery{w, i % 3})
			if i < dups { // Smartlead's retry of an acknowledged event, landing on another replica
				plan = append(plan, delivery{w, (i + 1) % 3})
			}
			count(want, sender, bounce)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(plan))
		for c := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < len(plan); i += 24 {
					d := plan[i]
					if _, err := deliverUntilAcknowledged(func() string { return addrs[d.replica] }, "org-replicas", "s-rep", d.w,
						time.Now().Add(2*time.Minute)); err != nil {
						errs <- fmt.Errorf("replica %d: %w", d.replica, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			Fail(err.Error())
		}
		Expect(tallies(ns)).To(Equal(want))
	})
})
