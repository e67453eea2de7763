package system_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// answers counts what a sender was told.
type answers struct {
	mu                sync.Mutex
	ok, unavailable   int
	withoutRetryAfter []string
	unexpected        []string
}

// deliverAsSmartlead posts a signed webhook until it is acknowledged, waiting as long as each 503's
// Retry-After asks (Smartlead's retry), and records every answer.
func deliverAsSmartlead(addr, org, secret string, w webhook, seen *answers, deadline time.Time) error {
	for {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+webhookreceiver.WebhookPath, bytes.NewReader(w.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Organization-Id", org)
		req.Header.Set("X-Smartlead-Signature", webhookreceiver.Sign(w.body, secret))
		req.Header.Set("X-Request-Id", w.requestID)
		resp, err := httpClient.Do(req)
		wait := 20 * time.Millisecond
		if err == nil {
			resp.Body.Close()
			seen.mu.Lock()
			switch {
			case resp.StatusCode == http.StatusOK:
				seen.ok++
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				seen.unavailable++
				wait = time.Second
			case resp.StatusCode == http.StatusServiceUnavailable:
				seen.withoutRetryAfter = append(seen.withoutRetryAfter, w.requestID)
			default:
				seen.unexpected = append(seen.unexpected, fmt.Sprintf("%s: %d", w.requestID, resp.StatusCode))
			}
			seen.mu.Unlock()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("%s not acknowledged before the deadline", w.requestID), err)
		}
		time.Sleep(wait)
	}
}

var _ = Describe("the API server going away for 10 s in the middle of a stream", func() {
	It("answers 503 with Retry-After meanwhile, and records every retried event exactly once", func() {
		proxy, err := testenv.NewProxy(env.Config)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		mgr, err := env.NewManagerWith(proxy.Through(env.Config), (&manager.Options{}).CacheOptions())
		Expect(err).NotTo(HaveOccurred())
		addr := freeAddr()
		DeferCleanup(runManager(mgr, addr, 2*time.Millisecond))
		ns, emails := newTenant("org-outage", "s-out", 6, nil)

		const total = 900
		want := map[string][2]int64{}
		var plan []webhook
		for i := range total {
			sender := emails[i%len(emails)]
			bounce := i%6 == 0
			plan = append(plan, sendEvent(sender, i, bounce))
			count(want, sender, bounce)
		}
		seen := &answers{}
		var acknowledged atomic.Int64
		outage := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(outage)
			for acknowledged.Load() < total/4 {
				time.Sleep(5 * time.Millisecond)
			}
			By("cutting the manager off the API server for 10 s")
			proxy.Down()
			time.Sleep(10 * time.Second)
			proxy.Up()
		}()
		var wg sync.WaitGroup
		errs := make(chan error, total)
		for c := range 16 {
			wg.Go(func() {
				for i := c; i < total; i += 16 {
					// Pace the stream so that it is still running when the outage starts and ends.
					time.Sleep(15 * time.Millisecond)
					if err := deliverAsSmartlead(addr, "org-outage", "s-out", plan[i], seen, time.Now().Add(2*time.Minute)); err != nil {
						errs <- err
					}
					acknowledged.Add(1)
				}
			})
		}
		wg.Wait()
		<-outage
		close(errs)
		for err := range errs {
			Fail(err.Error())
		}
		Expect(seen.unexpected).To(BeEmpty(), "answers other than 200 and 503")
		Expect(seen.withoutRetryAfter).To(BeEmpty(), "503s without Retry-After")
		Expect(seen.unavailable).To(BeNumerically(">", 0), "the outage was not seen by any sender")
		Expect(seen.ok).To(Equal(total))
		// Acknowledged means written: the tallies are exact now, with each write whose answer the outage
		// cut off (and that Smartlead so sent again) recognised by its event id.
		Expect(tallies(ns)).To(Equal(want))
		GinkgoWriter.Printf("outage: %d answers 503 with Retry-After, %d events acknowledged\n", seen.unavailable, seen.ok)
	})
})
