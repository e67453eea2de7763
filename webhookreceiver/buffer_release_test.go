package webhookreceiver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// The buffer budget is given back on every way a request can end after its body was reserved: a wrong
// signature (401 after the body was read), malformed JSON (400), a sender that hangs up mid-body or
// declares more than it sends, and a panic while authenticating. A reservation kept on any of them would
// leak until the receiver answered 503 to everyone.
func TestBufferReleasedOnEveryPath(t *testing.T) {
	panicky := &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.Secret); ok && key.Name == "smartlead" && panicNext.Load() {
			panic("a Secret read that panics")
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	s, _ := newTestServer(t, panicky, logr.Discard())
	s.MaxBody = 64 << 10
	s.MaxBuffer = 128 << 10
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	send := func(body string, headers map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(flatBounce, map[string]string{"X-Organization-Id": testOrg, "X-Smartlead-Signature": Sign([]byte(flatBounce), "wrong")}); code != http.StatusUnauthorized {
		t.Fatalf("wrong signature: %d", code)
	}
	if code := send(`{"event_type":`, signed(`{"event_type":`)); code != http.StatusBadRequest {
		t.Fatalf("malformed: %d", code)
	}
	// Hang up mid-body: a declared 60 KiB of which 1 KiB arrives.
	for range 3 {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nX-Organization-Id: %s\r\nX-Smartlead-Signature: sha256=00\r\nContent-Length: %d\r\n\r\n%s",
			WebhookPath, testOrg, 60<<10, strings.Repeat("x", 1<<10))
		time.Sleep(20 * time.Millisecond)
		conn.Close()
	}
	panicNext.Store(true)
	if code := send(flatBounce, signed(flatBounce)); code != http.StatusInternalServerError {
		t.Fatalf("a panic while authenticating: %d", code)
	}
	panicNext.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for s.buffers.used.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the hung-up requests finish reading
	}
	if n := s.buffers.used.Load(); n != 0 {
		t.Fatalf("%d bytes still reserved after every request ended", n)
	}
	if code := send(flatBounce, signed(flatBounce)); code != http.StatusOK {
		t.Fatalf("a good event afterwards: %d", code)
	}
}

// panicNext makes the test server's Secret reads panic.
var panicNext atomic.Bool
