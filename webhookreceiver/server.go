// Package webhookreceiver serves Smartlead's webhooks (POST /webhooks/smartlead) and the execution gate
// (GET /v1/gate) on every replica of the manager. Events are authenticated, parsed, de-duplicated and
// group-committed into Mailbox status before they are acknowledged.
package webhookreceiver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/eventlog"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/internal/trust"
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

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// serveWebhook answers one Smartlead webhook.
func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	evType, result, code := "unknown", "", http.StatusOK
	defer func() {
		if rec := recover(); rec != nil {
			s.Log.Error(fmt.Errorf("%v", rec), "webhook handler panicked")
			code, result = http.StatusInternalServerError, "error"
			writeJSON(w, code, errorBody{"internal error"})
		}
		eventsTotal.WithLabelValues(evType, result).Inc()
		requestDuration.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	}()
	status, typ, err := s.handleWebhook(r.Context(), w, r)
	evType = typ
	if err != nil {
		code, result = err.code, "rejected"
		if err.code >= 500 {
			result = "error"
			w.Header().Set("Retry-After", strconv.Itoa(err.retryAfter))
		}
		if err.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		s.Log.V(1).Info("webhook refused", "code", err.code, "reason", err.msg)
		writeJSON(w, err.code, errorBody{err.msg})
		return
	}
	result = status
	writeJSON(w, http.StatusOK, statusBody{status})
}

func (s *Server) handleWebhook(ctx context.Context, w http.ResponseWriter, r *http.Request) (string, string, *httpError) {
	if r.Method != http.MethodPost {
		return "", "unknown", fail(http.StatusMethodNotAllowed, "method %s not allowed; use POST", r.Method)
	}
	// The organization is looked at before a byte of the body is read: a request that names no known
	// organization costs no buffer.
	policies, herr := s.organizationPolicies(ctx, r)
	if herr != nil {
		return "", "unknown", herr
	}
	body, release, herr := s.readBody(w, r)
	defer release()
	if herr != nil {
		return "", "unknown", herr
	}
	policies, herr = s.authenticate(ctx, policies, &credentials{signature: r.Header.Get("X-Smartlead-Signature"),
		path: pathSecret(r), body: body})
	if herr != nil {
		return "", "unknown", herr
	}
	ev, err := ParseEvent(body)
	release() // the body is not needed any more: its reservation serves other requests while this one writes
	if err != nil {
		return "", "unknown", fail(http.StatusBadRequest, "%v", err)
	}
	typ := eventTypeLabel(ev)
	if ev.Kind == 0 {
		return "ignored", typ, nil
	}

	if s.MaxEventAge > 0 && !ev.At.IsZero() && s.now().Sub(ev.At) > s.MaxEventAge {
		// A replayed capture or a retry past the de-duplication horizon: it could count twice.
		return "stale", typ, nil
	}
	mb, herr := s.findMailbox(ctx, policies, ev)
	if herr != nil {
		return "", typ, herr
	}
	rules, err := s.rulesOf(ctx, mb)
	if err != nil {
		return "", typ, unavailable("reading the mailbox's policy: %v", apierrors.ReasonForError(err))
	}
	id, alt := EventIDs(r.Header.Get("X-Request-Id"), ev)
	tev := tally.Event{ID: id, AltID: alt, Kind: ev.Kind, Soft: ev.Soft, At: s.now()}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	recorded, err := s.Committer.Submit(ctx, mb, tev, rules)
	switch {
	case err == nil && recorded:
		if s.LogEvents {
			s.logEvent(mb, ev, typ, tev.At)
		}
		return "recorded", typ, nil
	case err == nil:
		return "duplicate", typ, nil
	case apierrors.IsNotFound(err):
		return "", typ, unavailable("mailbox %s was deleted while recording; retry", mb.Name)
	default:
		s.Log.Error(err, "recording webhook event failed", "mailbox", client.ObjectKeyFromObject(mb).String())
		return "", typ, unavailable("could not record the event, retry later")
	}
}

// logEvent writes the --log-events line of a recorded event: what `kubectl bounceguard whatif` replays.
// The lead appears only as a digest.
func (s *Server) logEvent(mb *bgv1.Mailbox, ev Event, typ string, at time.Time) {
	kv := []any{"namespace", mb.Namespace, "mailbox", mb.Name, "policy", mb.PolicyName(), "sender", mb.Spec.Email,
		"domain", mb.Domain(), "type", typ, "at", at.UTC().Format(time.RFC3339Nano)}
	if !ev.At.IsZero() {
		kv = append(kv, "eventTime", ev.At.UTC().Format(time.RFC3339Nano))
	}
	if ev.lead != "" {
		kv = append(kv, "lead", LeadDigest(ev.lead))
	}
	s.Log.WithName(eventlog.Name).Info(eventlog.Message, kv...)
}

func eventTypeLabel(ev Event) string {
	switch {
	case ev.Kind == tally.Send:
		return "send"
	case ev.Kind == tally.Bounce && ev.Soft:
		return "soft_bounce"
	case ev.Kind == tally.Bounce:
		return "bounce"
	}
	return "ignored"
}

// rulesOf returns the rules an event of mb is tallied by: those of the mailbox's own policy (policyRef),
// whichever policy authenticated the webhook; the defaults while that policy is missing (the reconciler
// then reports PolicyNotFound and makes no Smartlead call).
func (s *Server) rulesOf(ctx context.Context, mb *bgv1.Mailbox) (protection.Rules, error) {
	var p bgv1.ProtectionPolicy
	err := s.Client.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}, &p)
	switch {
	case err == nil:
		return protection.RulesFor(&p), nil
	case apierrors.IsNotFound(err):
		return protection.RulesFor(nil), nil
	}
	return protection.Rules{}, err
}

// pathSecret returns the webhook secret given as the last path segment (POST /webhooks/smartlead/<secret>).
func pathSecret(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, WebhookPath+"/")
	if !ok {
		return ""
	}
	return rest
}

// organizationPolicies returns, sorted by namespace/name, the policies of this manager's shard whose
// organization id is the request's x-organization-id: 401 when it is missing or names none. It reads
// nothing of the body.
func (s *Server) organizationPolicies(ctx context.Context, r *http.Request) ([]bgv1.ProtectionPolicy, *httpError) {
	org := strings.TrimSpace(r.Header.Get("X-Organization-Id"))
	if org == "" {
		return nil, fail(http.StatusUnauthorized, "missing x-organization-id header")
	}
	var list bgv1.ProtectionPolicyList
	if err := s.Client.List(ctx, &list, client.MatchingFields{index.PolicyOrganization: org}); err != nil {
		return nil, unavailable("looking up the organization: %v", err)
	}
	list.Items = s.inShard(ctx, list.Items)
	if len(list.Items) == 0 {
		return nil, fail(http.StatusUnauthorized, "unknown organization")
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return list.Items, nil
}

// credentials are what a request may present to prove it knows a policy's webhook secret: the
// X-Smartlead-Signature header, the secret as the last path segment, and the payload's secret_key. The
// secret_key is read from the body only when it is needed — not for a policy without a secret, nor once
// the signature or path secret has verified — so a signed webhook's body is parsed once, by ParseEvent.
type credentials struct {
	signature, path string
	body            []byte
	key             *string // the payload's secret_key once read
}

// secretKey returns the payload's secret_key, reading it from the body the first time.
func (c *credentials) secretKey() string {
	if c.key == nil {
		k := PayloadSecretKey(c.body)
		c.key = &k
	}
	return *c.key
}

// presented reports whether the request carries any credential.
func (c *credentials) presented() bool {
	return c.signature != "" || c.path != "" || c.secretKey() != ""
}

// verify reports whether one of the credentials proves one of the newline-separated secrets: a signature
// of the body, or the secret itself (path or secret_key), compared in constant time.
func (c *credentials) verify(secrets string) bool {
	if c.signature != "" && VerifySignature(c.body, c.signature, secrets) {
		return true
	}
	digests := digestsOf(secrets)
	if c.path != "" && oneOf(sha256.Sum256([]byte(c.path)), digests) {
		return true
	}
	key := c.secretKey()
	return key != "" && oneOf(sha256.Sum256([]byte(key)), digests)
}

// authenticate checks the request's credentials against the webhook secrets the organization's policies
// reference. It returns the policies that authenticated the request as strongly as the strongest did:
// when one verified a secret, a policy without one (which accepts anything) never takes the event, so an
// unsigned policy on someone else's organization id cannot capture their signed events. When a
// credential was presented, none verified, and a policy's Secret could not be read, the answer is 503
// (Smartlead retries) rather than a fall-back to the policies without a secret: the event may be that
// policy's. A request without any credential reads no Secret.
func (s *Server) authenticate(ctx context.Context, policies []bgv1.ProtectionPolicy, creds *credentials) (
	[]bgv1.ProtectionPolicy, *httpError) {
	var ok, verified []bgv1.ProtectionPolicy
	unreadable := "" // why a policy's webhook secret could not be read, if one could not
	for _, p := range policies {
		ref := p.Spec.Smartlead.WebhookSecretRef
		if ref == nil {
			key := p.Namespace + "/" + p.Name
			if _, warned := s.warnedUnsigned.LoadOrStore(key, true); !warned {
				s.Log.Info("accepting unsigned webhooks: the policy has no webhookSecretRef", "policy", key)
			}
			ok = append(ok, p)
			continue
		}
		if !creds.presented() {
			continue // nothing to verify: no Secret is read for a bare request
		}
		// One policy's missing Secret must not turn away the webhooks other policies verify.
		var secret corev1.Secret
		if err := s.secrets().Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, &secret); err != nil {
			if apierrors.IsNotFound(err) {
				unreadable = fmt.Sprintf("the webhook secret of policy %s/%s is missing", p.Namespace, p.Name)
			} else {
				unreadable = fmt.Sprintf("reading the webhook secret: %v", apierrors.ReasonForError(err))
			}
			continue
		}
		secrets := string(secret.Data[ref.Key])
		if len(secretValues(secrets)) == 0 { // absent, empty, or only whitespace (emptied mid-rotation)
			unreadable = fmt.Sprintf("the webhook secret of policy %s/%s has no secret under key %q", p.Namespace, p.Name, ref.Key)
			continue
		}
		if creds.verify(secrets) {
			verified = append(verified, p)
		}
	}
	switch {
	case len(verified) > 0:
		return verified, nil
	case unreadable != "" && creds.presented():
		// It may be this policy's event: Smartlead retries it once the Secret can be read, so nothing is
		// lost, and a weaker policy never takes it meanwhile.
		return nil, unavailable("%s", unreadable)
	case len(ok) > 0:
		return ok, nil
	case !creds.presented():
		return nil, fail(http.StatusUnauthorized, "missing X-Smartlead-Signature (or the secret as the last path segment, or secret_key)")
	case creds.signature != "":
		return nil, fail(http.StatusUnauthorized, "invalid X-Smartlead-Signature")
	case creds.path != "":
		return nil, fail(http.StatusUnauthorized, "invalid webhook secret in the path")
	}
	return nil, fail(http.StatusUnauthorized, "invalid secret_key")
}

// errForeignMailbox answers an event whose sender is a Mailbox only of policies that did not accept it.
var errForeignMailbox = fail(http.StatusConflict, "the sender's Mailbox belongs to a policy that did not authenticate this event: "+
	"an event is counted only into a Mailbox of a policy that accepted it (check x-organization-id and the webhook secret)")

// findMailbox returns the Mailbox an event is counted into: one whose own policy (spec.policyRef) is one
// of the policies that accepted the event, never a Mailbox of another policy of the same namespace. An
// address that is a Mailbox only of other policies is refused (409, nothing written, no twin created) —
// unless the event was authenticated by a webhook secret and those policies have none (or are missing):
// such a Mailbox may have been squatted by anyone who knows the unsigned policy's organization id, so it
// never blocks the signed policy, which gets a Mailbox of its own (see discover). An unknown address is
// created when the accepting policy auto-discovers. With accepted policies in several
// namespaces, the one whose namespace has the mailbox wins; in two of them → 409 (DuplicateAddress). A
// nested-shape event names only the account id: it finds a mailbox whose spec or status holds that id.
func (s *Server) findMailbox(ctx context.Context, policies []bgv1.ProtectionPolicy, ev Event) (*bgv1.Mailbox, *httpError) {
	var found *bgv1.Mailbox
	foreign := false
	searched := map[string]bool{}
	for i := range policies {
		ns := policies[i].Namespace
		if searched[ns] {
			continue
		}
		searched[ns] = true
		var list bgv1.MailboxList
		field, value := index.MailboxEmail, ev.Sender
		if ev.Sender == "" {
			field, value = index.MailboxAccountID, strconv.FormatInt(ev.AccountID, 10)
		}
		if err := s.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{field: value}); err != nil {
			return nil, unavailable("looking up the mailbox: %v", err)
		}
		var own []bgv1.Mailbox
		for i := range list.Items {
			mb := &list.Items[i]
			if accepts(policies, mb) {
				own = append(own, *mb)
				continue
			}
			yields, err := s.yieldsTo(ctx, policies, mb)
			if err != nil {
				return nil, unavailable("looking up the mailbox's policy: %v", apierrors.ReasonForError(err))
			}
			foreign = foreign || !yields
		}
		if len(own) == 0 {
			continue
		}
		if found != nil {
			// The same sender under equally authenticated policies of two namespaces: counting it in either
			// could be the wrong tenant's. Both Mailboxes say DuplicateAddress (Ready=False).
			return nil, fail(http.StatusConflict, "the sender is a Mailbox in more than one namespace whose policies "+
				"accept this organization's webhooks; remove all but one (their Ready condition says DuplicateAddress)")
		}
		sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
		found = &own[0]
	}
	switch {
	case found != nil:
		return found, nil
	case foreign:
		return nil, errForeignMailbox
	case ev.Sender == "":
		return nil, fail(http.StatusNotFound, "unknown sender: no Mailbox has email_account_id %d", ev.AccountID)
	}
	p := discoveringPolicy(policies)
	if p.Spec.AutoDiscover != nil && !*p.Spec.AutoDiscover {
		return nil, fail(http.StatusNotFound, "unknown sender: no Mailbox for it and autoDiscover is off")
	}
	return s.discover(ctx, p, policies, ev)
}

// yieldsTo reports whether mb, a Mailbox of a policy that did not accept the event, gives way to the
// accepting policies: they authenticated the event with a webhook secret, and mb's own policy has none
// (or no longer exists), so mb may have been created by anyone who knows that policy's organization id.
func (s *Server) yieldsTo(ctx context.Context, accepted []bgv1.ProtectionPolicy, mb *bgv1.Mailbox) (bool, error) {
	if len(accepted) == 0 || accepted[0].Spec.Smartlead.WebhookSecretRef == nil {
		return false, nil // the accepting policies are unsigned themselves: nothing is weaker than them
	}
	signed, err := trust.PolicyAuthenticates(ctx, s.Client, mb.Namespace, mb.PolicyName())
	return !signed, err
}

// accepts reports whether mb's own policy is one of policies.
func accepts(policies []bgv1.ProtectionPolicy, mb *bgv1.Mailbox) bool {
	return slices.ContainsFunc(policies, func(p bgv1.ProtectionPolicy) bool {
		return p.Namespace == mb.Namespace && p.Name == mb.PolicyName()
	})
}

// discoveringPolicy is the accepting policy an unknown sender's Mailbox is created under: in the first
// accepting policy's namespace, the one named "default" when it accepted the event (what a Mailbox
// without policyRef means), else that first one. Never a policy that did not accept the event.
func discoveringPolicy(policies []bgv1.ProtectionPolicy) *bgv1.ProtectionPolicy {
	p := &policies[0]
	for i := range policies {
		if policies[i].Namespace == p.Namespace && policies[i].Name == bgv1.DefaultPolicyName {
			return &policies[i]
		}
	}
	return p
}

// discover creates the Mailbox of an unknown sender under p, named after its address. When a Mailbox of
// that address appeared meanwhile (another replica, a person), it is used only if its policy accepted
// the event.
func (s *Server) discover(ctx context.Context, p *bgv1.ProtectionPolicy, accepted []bgv1.ProtectionPolicy, ev Event) (
	*bgv1.Mailbox, *httpError) {
	for _, name := range bgv1.MailboxNames(ev.Sender) {
		mb := &bgv1.Mailbox{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace,
				Labels: map[string]string{bgv1.LabelManagedBy: bgv1.ManagedByValue}},
			Spec: bgv1.MailboxSpec{Email: ev.Sender, PolicyRef: bgv1.LocalPolicyReference{Name: p.Name}},
		}
		if ev.AccountID > 0 {
			id := ev.AccountID
			mb.Spec.SmartleadAccountID = &id
		}
		err := s.Client.Create(ctx, mb)
		switch {
		case err == nil:
			s.Log.Info("discovered a new mailbox", "mailbox", p.Namespace+"/"+name, "policy", p.Name)
			return mb, nil
		case apierrors.IsInvalid(err):
			return nil, fail(http.StatusBadRequest, "invalid sender address")
		case !apierrors.IsAlreadyExists(err):
			return nil, unavailable("creating the mailbox: %v", apierrors.ReasonForError(err))
		}
		// Created meanwhile by another replica, or the name belongs to another address: read it, from the
		// API server when the cache has not seen it yet.
		existing := &bgv1.Mailbox{}
		err = s.Client.Get(ctx, client.ObjectKeyFromObject(mb), existing)
		if apierrors.IsNotFound(err) && s.Committer != nil {
			err = s.Committer.reader.Get(ctx, client.ObjectKeyFromObject(mb), existing)
		}
		if err != nil {
			return nil, unavailable("reading the mailbox: %v", apierrors.ReasonForError(err))
		}
		if existing.Spec.Email == ev.Sender {
			if accepts(accepted, existing) {
				return existing, nil
			}
			// Another policy's Mailbox of this address: a signed policy takes the next name rather than
			// give way to an unsigned one's (yieldsTo); anything else is refused.
			yields, err := s.yieldsTo(ctx, accepted, existing)
			if err != nil {
				return nil, unavailable("looking up the mailbox's policy: %v", apierrors.ReasonForError(err))
			}
			if !yields {
				return nil, errForeignMailbox
			}
		}
	}
	return nil, unavailable("creating the mailbox: no free name for it")
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
