package webhookreceiver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// slowBody is one raw connection that sends a webhook's headers and all of a body but its last byte, then
// waits: a slow (or stalled) sender holding whatever the receiver buffered of it.
type slowBody struct {
	conn    net.Conn
	settled chan struct{} // closed once the body is written (but its last byte) or the answer came
	answer  chan *http.Response
	once    sync.Once
}

func startSlowBody(t testing.TB, addr, org string, size int) *slowBody {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sb := &slowBody{conn: conn, settled: make(chan struct{}), answer: make(chan *http.Response, 1)}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nX-Organization-Id: %s\r\n"+
		"X-Smartlead-Signature: sha256=%s\r\nContent-Length: %d\r\n\r\n", WebhookPath, org, strings.Repeat("ab", 32), size)
	go func() {
		_, _ = conn.Write([]byte(head))
		_, err := conn.Write(bytes.Repeat([]byte("x"), size-1))
		if err == nil {
			sb.once.Do(func() { close(sb.settled) })
		}
	}()
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			_ = resp.Body.Close() // the status is all the test reads
			sb.answer <- resp
		}
		close(sb.answer)
		sb.once.Do(func() { close(sb.settled) })
	}()
	return sb
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Finding: the whole body was read before the organization was looked at, and any number of bodies were
// buffered at once: slow ~1 MiB bodies grew the heap by about their total. Now the organization is checked
// first, and --receiver-max-buffer bounds what is buffered across all requests (503 with Retry-After
// beyond it). The figure in docs/benchmarks.md comes from this test (-v): heap growth with `slow` bodies
// of 1 MiB held open at once.
func TestHostileSlowBodiesBufferedWithinBound(t *testing.T) {
	const slow, size, limit = 128, 1 << 20, 16 << 20
	s, _ := newTestServer(t, nil, logr.Discard())
	s.MaxBody = 2 << 20
	s.MaxBuffer = limit
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	before := heapInUse()
	var bodies []*slowBody
	defer func() { // before the server's Close, which waits for their requests
		for _, b := range bodies {
			b.conn.Close()
		}
	}()
	for range slow {
		bodies = append(bodies, startSlowBody(t, addr, testOrg, size))
	}
	for _, b := range bodies {
		select {
		case <-b.settled:
		case <-time.After(time.Minute):
			t.Fatal("a slow body neither finished writing nor got an answer")
		}
	}
	held := heapInUse()
	growth := int64(held) - int64(before)
	shed := 0
	for _, b := range bodies {
		select {
		case resp := <-b.answer:
			if resp != nil {
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("an over-budget body answered %d", resp.StatusCode)
				}
				shed++
			}
		default:
		}
	}
	t.Logf("%d slow bodies of %d KiB held open: heap grew by %.1f MiB (buffer bound %d MiB; peak buffered %.1f MiB); %d answered 503",
		slow, size>>10, float64(growth)/(1<<20), limit>>20, float64(s.buffers.peak.Load())/(1<<20), shed)
	if growth > 2*limit {
		t.Errorf("the heap grew by %d bytes with %d slow bodies held; the buffer bound is %d", growth, slow, limit)
	}
	if peak := s.buffers.peak.Load(); peak > limit {
		t.Errorf("%d bytes buffered at once, above the bound %d", peak, limit)
	}
	if shed == 0 {
		t.Error("no body was refused although they exceed the bound together")
	}
	// The held ones finish: each is read and judged (a wrong signature: 401); the budget is returned.
	for _, b := range bodies {
		_, _ = b.conn.Write([]byte("x"))
	}
	for _, b := range bodies {
		if resp, ok := <-b.answer; ok && resp != nil && resp.StatusCode != http.StatusUnauthorized &&
			resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("a finished slow body answered %d", resp.StatusCode)
		}
		b.conn.Close()
	}
	if n := s.buffers.used.Load(); n != 0 {
		t.Errorf("%d bytes of buffer still reserved after every request ended", n)
	}
}

// Finding: an unknown or missing organization was answered only after the whole body had been read; it is
// answered 401 at once, without reading the body (here: a 1 MiB body of which ten bytes ever arrive).
func TestHostileOrganizationCheckedBeforeTheBody(t *testing.T) {
	s, _ := newTestServer(t, nil, logr.Discard())
	s.MaxBody = 2 << 20
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, org := range []string{"no-such-org", ""} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() // before the server's Close, which waits for its request
		header := ""
		if org != "" {
			header = "X-Organization-Id: " + org + "\r\n"
		}
		_, _ = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: receiver\r\n%sContent-Length: %d\r\n\r\n{\"event\":", WebhookPath, header, 1<<20)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("organization %q: no answer while the body is incomplete: %v", org, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("organization %q: %d", org, resp.StatusCode)
		}
	}
	if n := s.buffers.peak.Load(); n != 0 {
		t.Errorf("%d bytes were buffered for requests of no known organization", n)
	}
}

// A proxy may forward a webhook chunked (no Content-Length), or a sender may declare more than it may
// send: a chunked body is read in growing reservations and recorded; a chunked one over --receiver-max-body
// is 413, and so is a declared length over it, answered before the body is read; a chunked body that
// would outgrow the buffer bound is 503. Every reservation is returned.
func TestHostileChunkedAndOverDeclaredBodies(t *testing.T) {
	s, c := newTestServer(t, nil, logr.Discard())
	s.MaxBody = 256 << 10
	s.MaxBuffer = 512 << 10 // twice the largest body: a chunked body holds its old and new buffer while it grows
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	send := func(body string, contentLength int64, headers map[string]string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, io.NopCloser(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = contentLength // -1: chunked
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A real event padded past the first reservation, so that the chunked read grows several times.
	padded := strings.Replace(flatBounce, `"event_type"`, `"metadata":{"note":"`+strings.Repeat("p", 100<<10)+`"},"event_type"`, 1)
	if code, answer := send(padded, -1, signed(padded)); code != http.StatusOK || !strings.Contains(answer, "recorded") {
		t.Fatalf("a chunked event: %d %s", code, answer)
	}
	if mb := mailboxOf(t, c, "acme", "alice-acme-com"); mb.Status.Bounced != 1 {
		t.Fatalf("bounced %d", mb.Status.Bounced)
	}
	exact := strings.Replace(flatBounce, "<m2@", "<m2x@", 1)
	exact += strings.Repeat(" ", int(s.MaxBody)-len(exact)) // exactly --receiver-max-body bytes
	for _, length := range []int64{-1, int64(len(exact))} {
		if code, answer := send(exact, length, signed(exact)); code != http.StatusOK {
			t.Fatalf("a body of exactly the bound (length %d): %d %s", length, code, answer)
		}
	}
	big := strings.Repeat(" ", 300<<10) + flatBounce
	if code, answer := send(big, -1, signed(big)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked body over the bound: %d %s", code, answer)
	}
	if code, answer := send(big, int64(len(big)), signed(big)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a declared body over the bound: %d %s", code, answer)
	}
	// Another request holds most of the budget: a chunked body that outgrows what is left gets 503.
	if !s.buffers.take(460<<10, s.MaxBuffer) {
		t.Fatal("could not hold the budget")
	}
	if code, answer := send(padded, -1, signed(padded)); code != http.StatusServiceUnavailable || !strings.Contains(answer, "--receiver-max-buffer") {
		t.Fatalf("a chunked body beyond the buffer bound: %d %s", code, answer)
	}
	s.buffers.give(460 << 10)
	if n := s.buffers.used.Load(); n != 0 {
		t.Fatalf("%d bytes still reserved", n)
	}
}
