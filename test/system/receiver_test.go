package system_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// tallies reads sent and bounced per mailbox email from the API server.
// count adds one send (or bounce) of sender to the expected tallies.
func count(want map[string][2]int64, sender string, bounce bool) {
	t := want[sender]
	if bounce {
		t[1]++
	} else {
		t[0]++
	}
	want[sender] = t
}

func tallies(ns string) map[string][2]int64 {
	var list bgv1.MailboxList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	out := map[string][2]int64{}
	for _, mb := range list.Items {
		out[mb.Spec.Email] = [2]int64{mb.Status.Sent, mb.Status.Bounced}
	}
	return out
}

var _ = Describe("the receiver against a real API server", Ordered, func() {
	var addr string
	var stop func()
	BeforeAll(func() {
		addr = freeAddr()
		stop = startManager(addr, 2*time.Millisecond)
		DeferCleanup(func() { stop() })
	})

	It("records 500 concurrent events with 10% duplicates exactly once each", func() {
		ns, emails := newTenant("org-concurrent", "s1", 5, nil)
		_ = ns
		type plan struct {
			w   webhook
			dup bool
		}
		var events []plan
		want := map[string][2]int64{}
		for i := range 450 {
			sender := emails[i%len(emails)]
			bounce := i%9 == 0
			events = append(events, plan{w: sendEvent(sender, i, bounce)})
			count(want, sender, bounce)
		}
		for i := range 50 { // 10% are re-deliveries of events already in the list
			events = append(events, plan{w: events[i*9].w, dup: true})
		}
		rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

		var wg sync.WaitGroup
		var recorded, duplicate, failed atomic.Int64
		sem := make(chan struct{}, 64)
		for _, e := range events {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				answer, err := deliverUntilAcknowledged(func() string { return addr }, "org-concurrent", "s1", e.w,
					time.Now().Add(time.Minute))
				switch {
				case err != nil:
					failed.Add(1)
				case strings.Contains(answer, "recorded"):
					recorded.Add(1)
				case strings.Contains(answer, "duplicate"):
					duplicate.Add(1)
				}
			}()
		}
		wg.Wait()
		Expect(failed.Load()).To(BeZero())
		Expect(recorded.Load()).To(Equal(int64(450)))
		Expect(duplicate.Load()).To(Equal(int64(50)))
		Expect(tallies(ns)).To(Equal(want))
	})

	It("creates the Mailbox of an unknown sender and records its event", func() {
		ns, _ := newTenant("org-discover", "s2", 0, nil)
		w := sendEvent("Fresh.Face@Acme.io", 1, false)
		code, answer, err := deliver(addr, "org-discover", "s2", w)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(200), answer)
		var mb bgv1.Mailbox
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "fresh-face-acme-io"}, &mb)).To(Succeed())
		Expect(mb.Spec.Email).To(Equal("fresh.face@acme.io"))
		Expect(mb.Status.Sent).To(Equal(int64(1)))
		Expect(mb.Labels).To(HaveKeyWithValue(bgv1.LabelManagedBy, "bounceguard"))
	})

	It("refuses an unknown sender with 404 when autoDiscover is off", func() {
		newTenant("org-closed", "s3", 0, func(p *bgv1.ProtectionPolicy) { p.Spec.AutoDiscover = new(bool) })
		code, answer, err := deliver(addr, "org-closed", "s3", sendEvent("who@acme.io", 1, false))
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(404))
		Expect(answer).To(ContainSubstring("autoDiscover is off"))
	})
})

var _ = Describe("a receiver stopped mid-load", func() {
	It("loses nothing and counts nothing twice while the client retries unacknowledged events", func() {
		var mu sync.Mutex
		addr := freeAddr()
		current := func() string { mu.Lock(); defer mu.Unlock(); return addr }
		stop := startManager(current(), 2*time.Millisecond)
		ns, emails := newTenant("org-crash", "s4", 4, nil)

		const total = 600
		var sent atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, total)
		for c := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < total; i += 16 {
					w := sendEvent(emails[i%len(emails)], i, false)
					if _, err := deliverUntilAcknowledged(current, "org-crash", "s4", w, time.Now().Add(2*time.Minute)); err != nil {
						errs <- err
					}
					sent.Add(1)
				}
			}()
		}
		Eventually(sent.Load, time.Minute, 5*time.Millisecond).Should(BeNumerically(">=", total/3))
		stop() // the receiver goes away with requests in flight
		mu.Lock()
		addr = freeAddr()
		mu.Unlock()
		stop = startManager(current(), 2*time.Millisecond)
		DeferCleanup(func() { stop() })
		wg.Wait()
		close(errs)
		for err := range errs {
			Fail(err.Error())
		}
		var total2 int64
		for _, t := range tallies(ns) {
			total2 += t[0]
		}
		Expect(total2).To(Equal(int64(total)), fmt.Sprintf("tallies %v", tallies(ns)))
	})
})
