// Package webhookreceiver serves Smartlead's webhooks (POST /webhooks/smartlead) and the execution gate
// (GET /v1/gate) on every replica of the manager. Events are authenticated, parsed, de-duplicated and
// group-committed into Mailbox status before they are acknowledged.
package webhookreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Paths served by the receiver.
const (
	WebhookPath = "/webhooks/smartlead"
	GatePath    = "/v1/gate"
)

// DedupHorizon is how long a delivered event is recognised as a duplicate, at the rate the ledger is
// sized for (tally.MaxEventIDs ids per mailbox: 2 h at up to 100 events per mailbox per hour when events
// carry no X-Request-Id; half that when each carries one, as its digest is recorded too). --receiver-max-event-age may not exceed it, so that no event older than the de-duplication
// memory can be counted.
const DedupHorizon = 2 * time.Hour

// Server is the receiver: a manager Runnable that serves on every replica, once the cache has synced.
type Server struct {
	// Addr is the listen address (":8082").
	Addr string
	// MaxBody is the largest body accepted, in bytes.
	MaxBody int64
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Committer writes events into Mailbox status.
	Committer *Committer
	// WaitForCacheSync blocks until the informer cache is ready.
	WaitForCacheSync func(context.Context) bool
	// Secrets reads the referenced Secrets (a secretstore.Store); default: Client.
	Secrets client.Reader
	// InShard reports whether a namespace is this manager's (--watch-label-selector); nil: every namespace.
	// Only its policies take webhooks and gate questions here.
	InShard func(ctx context.Context, namespace string) bool
	// Log receives the receiver's log lines (never a secret or a lead address).
	Log logr.Logger
	// LogEvents writes one structured line per recorded event (--log-events), the lead as a digest.
	LogEvents bool
	// MaxInFlight bounds the requests served at once; above it the answer is 503 with Retry-After. 0: no bound.
	MaxInFlight int
	// MaxEventAge refuses (200 "stale", nothing written) an event whose own timestamp is older; 0 disables
	// the check. It must not exceed the de-duplication horizon (DedupHorizon).
	MaxEventAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	// MaxBuffer bounds the bytes of request bodies buffered at once across all requests
	// (--receiver-max-buffer); a body that would go beyond it is answered 503 with Retry-After. 0: no bound.
	MaxBuffer int64

	buffers        bufferBudget
	warnedUnsigned sync.Map
	serving        atomic.Bool
	inFlight       chan struct{}
	inFlightOnce   sync.Once
	tokens         tokenDigests
}

// NeedLeaderElection is false: every replica serves webhooks.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends; it listens only after the cache has synced.
func (s *Server) Start(ctx context.Context) error {
	if s.WaitForCacheSync != nil && !s.WaitForCacheSync(ctx) {
		return errors.New("webhook receiver: cache did not sync")
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	s.serving.Store(true)
	defer s.serving.Store(false)
	s.Log.Info("serving Smartlead webhooks and the execution gate", "addr", ln.Addr().String())
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errCh:
		return err
	}
}

// ReadyCheck is a healthz.Checker that passes while the receiver serves.
func (s *Server) ReadyCheck(_ *http.Request) error {
	if !s.serving.Load() {
		return errors.New("webhook receiver not serving yet")
	}
	return nil
}

// Handler returns the receiver's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(WebhookPath, s.serveWebhook)
	// Where Smartlead cannot sign, the webhook secret may be the last path segment instead. The path is
	// never logged, put in a metric label or echoed in an error.
	mux.HandleFunc(WebhookPath+"/", s.serveWebhook)
	mux.HandleFunc(GatePath, s.serveGate)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{"not found"})
	})
	return s.limitInFlight(mux)
}

// limitInFlight answers 503 with Retry-After when MaxInFlight requests are already being served, before
// reading anything of the request, so a flood cannot queue up memory or API-server work.
func (s *Server) limitInFlight(next http.Handler) http.Handler {
	if s.MaxInFlight <= 0 {
		return next
	}
	s.inFlightOnce.Do(func() { s.inFlight = make(chan struct{}, s.MaxInFlight) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
			next.ServeHTTP(w, r)
		default:
			requestsShed.Inc()
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{"too many requests in flight, retry later"})
		}
	})
}

// SecretChanged returns what to call when a Secret changes (after the Secrets reader no longer holds its
// old data): the gate then drops the token digests it kept of it. Until it is asked for, the gate keeps
// no digests.
func (s *Server) SecretChanged() func(types.NamespacedName) {
	s.tokens.mu.Lock()
	s.tokens.enabled = true
	s.tokens.mu.Unlock()
	return func(key types.NamespacedName) { s.tokens.forget(key.Namespace, key.Name) }
}

// inShard keeps the policies of the manager's shard.
func (s *Server) inShard(ctx context.Context, policies []bgv1.ProtectionPolicy) []bgv1.ProtectionPolicy {
	if s.InShard == nil {
		return policies
	}
	return slices.DeleteFunc(policies, func(p bgv1.ProtectionPolicy) bool { return !s.InShard(ctx, p.Namespace) })
}

// secrets is the reader of Secrets.
func (s *Server) secrets() client.Reader {
	if s.Secrets != nil {
		return s.Secrets
	}
	return s.Client
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

type errorBody struct {
	Error string `json:"error"`
}

type statusBody struct {
	Status string `json:"status"`
}

// httpError is an answer other than 200, with the reason logged and sent.
type httpError struct {
	code       int
	msg        string
	retryAfter int
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) *httpError {
	e := fail(http.StatusServiceUnavailable, format, args...)
	e.retryAfter = 1
	return e
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
