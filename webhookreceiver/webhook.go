package webhookreceiver

// This file holds the webhook pipeline: organization → body (buffer.go) → authentication (auth.go) →
// parse (event.go) → route to a Mailbox (routing.go) → de-duplicate and commit (committer.go) → answer.

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/eventlog"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/tally"
)

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
