package system_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// BenchmarkHostileTraffic measures signed webhook traffic (rate, p99) alone and, in the same run, while
// attackers flood the receiver with requests that must be refused: unsigned, wrongly signed, for an
// unknown organization, oversized (2 MiB), a wrong secret in the path, and slow-loris connections that
// never finish their headers. Run it with `make bench`.
func BenchmarkHostileTraffic(b *testing.B) {
	rb, stop := startBench(b)
	defer stop()
	const n, clients, events, attackers, lorises = 1000, 32, 4000, 32, 200

	calm := rb.load("calm", rb.batchedAddr, n, clients, events, 0)

	// The attack targets the organization of the measured tenant, so that every refusal is for real.
	const victim = "under-attack"
	ctx, cancel := context.WithCancel(context.Background())
	var refused, unexpected atomic.Int64
	var wg sync.WaitGroup
	valid := sendEvent("m1@d1.bench.io", 1, true).body
	oversized := bytes.Repeat([]byte("x"), 2<<20)
	attacks := []func() (int, error){
		func() (int, error) { return post(rb.batchedAddr+webhookreceiver.WebhookPath, victim, "", valid) },
		func() (int, error) {
			return post(rb.batchedAddr+webhookreceiver.WebhookPath, victim, webhookreceiver.Sign(valid, "guessed"), valid)
		},
		func() (int, error) { return post(rb.batchedAddr+webhookreceiver.WebhookPath, "no-such-org", "", valid) },
		func() (int, error) { return post(rb.batchedAddr+webhookreceiver.WebhookPath, victim, "", oversized) },
		func() (int, error) {
			return post(rb.batchedAddr+webhookreceiver.WebhookPath+"/guessed-secret", victim, "", valid)
		},
	}
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; ctx.Err() == nil; j++ {
				code, err := attacks[j%len(attacks)]()
				switch {
				case err != nil:
				case code == http.StatusUnauthorized || code == http.StatusRequestEntityTooLarge:
					refused.Add(1)
				default:
					unexpected.Add(1)
				}
			}
		}()
	}
	for range lorises { // half a request line each, then silence
		conn, err := net.Dial("tcp", rb.batchedAddr)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("POST " + webhookreceiver.WebhookPath + " HTTP/1.1\r\nHost: x\r\nX-Organization-Id: " + victim + "\r\n"))
	}
	refusedBefore, t0 := refused.Load(), time.Now()
	attacked := rb.load(victim, rb.batchedAddr, n, clients, events, 0)
	hostileRate := float64(refused.Load()-refusedBefore) / time.Since(t0).Seconds()
	cancel()
	wg.Wait()

	b.Logf("signed alone:          %7.0f events/s  p50 %6.1fms  p99 %6.1fms  exact=%v", calm.rate(), ms(calm.p50), ms(calm.p99), calm.exact)
	b.Logf("signed under attack:   %7.0f events/s  p50 %6.1fms  p99 %6.1fms  exact=%v", attacked.rate(), ms(attacked.p50), ms(attacked.p99), attacked.exact)
	b.Logf("attack: %.0f refused requests/s from %d clients + %d slow-loris connections; %d answered otherwise",
		hostileRate, attackers, lorises, unexpected.Load())
	b.Logf("under attack / alone: rate %.2fx, p99 %.2fx", attacked.rate()/calm.rate(), float64(attacked.p99)/float64(calm.p99))
	if !calm.exact || !attacked.exact {
		b.Error("tallies not exact")
	}
	if unexpected.Load() > 0 {
		b.Errorf("%d hostile requests were not refused", unexpected.Load())
	}
	b.ReportMetric(calm.rate(), "alone-events/s")
	b.ReportMetric(attacked.rate(), "attacked-events/s")
	b.ReportMetric(ms(attacked.p99), "attacked-p99-ms")
	b.ReportMetric(hostileRate, "refused/s")
}

var attackClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func post(target, org, signature string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Organization-Id", org)
	if signature != "" {
		req.Header.Set("X-Smartlead-Signature", signature)
	}
	resp, err := attackClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("attack: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
