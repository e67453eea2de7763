package webhookreceiver

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/protection"
	"github.com/bounceguard/bounceguard/internal/trust"
)

// GateAnswer is the execution gate's answer: may this mailbox send now?
type GateAnswer struct {
	Allowed bool         `json:"allowed"`
	Mode    bgv1.Mode    `json:"mode"`
	Reasons []GateReason `json:"reasons"`
}

// GateReason is one entity that is not Healthy, with the evidence.
type GateReason struct {
	Entity  string      `json:"entity"`
	Name    string      `json:"name"`
	Health  bgv1.Health `json:"health"`
	Message string      `json:"message"`
}

// serveGate answers GET /v1/gate?mailbox=<email>[&namespace=<ns>] from the informer cache, to callers
// that present a gate token (Authorization: Bearer <token>) of the mailbox's policy.
func (s *Server) serveGate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"method " + r.Method + " not allowed; use GET"})
		return
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bounceguard-gate"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"missing bearer token"})
		return
	}
	policies, err := s.gatePolicies(r.Context(), token)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"looking up the token failed"})
		return
	}
	if len(policies) == 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bounceguard-gate", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{"invalid bearer token"})
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("mailbox")))
	if email == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{"missing mailbox query parameter"})
		return
	}
	answer, code, msg := s.gate(r.Context(), policies, email, r.URL.Query().Get("namespace"))
	if code != http.StatusOK {
		writeJSON(w, code, errorBody{msg})
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// gatePolicies returns the policies whose gate token Secret holds token (one of its newline-separated
// tokens). Every token of every gated policy is compared, in constant time on digests, so the time
// taken tells nothing of which matched or how much of it did. The digests are kept per Secret and
// dropped when the Secret changes (see SecretChanged), so an answer costs no Secret copy.
func (s *Server) gatePolicies(ctx context.Context, token string) ([]*bgv1.ProtectionPolicy, error) {
	var list bgv1.ProtectionPolicyList
	if err := s.Client.List(ctx, &list, client.MatchingFields{index.PolicyGate: index.ValueSet}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	list.Items = s.inShard(ctx, list.Items)
	presented := sha256.Sum256([]byte(token))
	var out []*bgv1.ProtectionPolicy
	for i := range list.Items {
		p := &list.Items[i]
		digests, err := s.tokens.digests(ctx, s.secrets(), p.Namespace, *p.Spec.Gate.TokenSecretRef)
		if err != nil {
			return nil, err
		}
		if oneOf(presented, digests) {
			out = append(out, p)
		}
	}
	return out, nil
}

// tokenDigests keeps the SHA-256 digests of the gate tokens in each referenced Secret key. It caches only
// once SecretChanged has been asked for: its callback forgets a Secret whenever it changes.
type tokenDigests struct {
	mu      sync.Mutex
	enabled bool
	epoch   uint64 // bumped by every forget, so that a read that raced a change is not stored
	m       map[string][][sha256.Size]byte
}

func (t *tokenDigests) digests(ctx context.Context, c client.Reader, ns string, ref bgv1.SecretKeySelector) ([][sha256.Size]byte, error) {
	key := ns + "/" + ref.Name + "/" + ref.Key
	t.mu.Lock()
	d, cached := t.m[key]
	enabled, epoch := t.enabled, t.epoch
	t.mu.Unlock()
	if cached {
		return d, nil
	}
	var secret corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, &secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		// Ready=False on the policy says so; nobody can use its gate meanwhile.
	}
	d = digestsOf(string(secret.Data[ref.Key]))
	if enabled {
		t.mu.Lock()
		if t.epoch == epoch {
			if t.m == nil {
				t.m = map[string][][sha256.Size]byte{}
			}
			t.m[key] = d
		}
		t.mu.Unlock()
	}
	return d, nil
}

func (t *tokenDigests) forget(ns, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
	prefix := ns + "/" + name + "/"
	for k := range t.m {
		if strings.HasPrefix(k, prefix) {
			delete(t.m, k)
		}
	}
}

// gate answers for the mailbox with that address among the given policies' mailboxes only (a token of one
// tenant learns nothing of another's: an address elsewhere is "unknown").
func (s *Server) gate(ctx context.Context, policies []*bgv1.ProtectionPolicy, email, namespace string) (*GateAnswer, int, string) {
	var list bgv1.MailboxList
	opts := []client.ListOption{client.MatchingFields{index.MailboxEmail: email}}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := s.Client.List(ctx, &list, opts...); err != nil {
		return nil, http.StatusServiceUnavailable, "looking up the mailbox failed"
	}
	var found []*bgv1.Mailbox
	var policy *bgv1.ProtectionPolicy
	for i := range list.Items {
		mb := &list.Items[i]
		for j := range policies {
			if p := policies[j]; p.Namespace == mb.Namespace && p.Name == mb.PolicyName() {
				found, policy = append(found, mb), p
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, http.StatusNotFound, "unknown mailbox"
	case 1:
	default:
		return nil, http.StatusConflict, "the token's policies govern this address in several namespaces; pass namespace"
	}
	mb := found[0]
	mode := policy.Spec.Mode
	if mode == "" {
		mode = bgv1.ModeObserve
	}
	var domain *bgv1.Domain
	if name := mb.Domain(); name != "" {
		d := &bgv1.Domain{}
		if err := s.Client.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: name}, d); err == nil {
			follows, err := trust.FollowsDomain(ctx, s.Client, policy, d)
			if err != nil {
				return nil, http.StatusServiceUnavailable, "reading the domain's policy failed"
			}
			if follows {
				domain = d
			}
		}
	}
	return Decide(mode, mb, domain), http.StatusOK, ""
}

// Decide is the gate's rule, over the mailbox and its domain as the cache holds them:
//   - every entity that is not Healthy is listed in the reasons, with the evidence for its health;
//   - Observe and Suggest always allow (the reasons say why Enforce would not);
//   - Enforce blocks a mailbox whose own health is Paused or whose domain is Paused, unless the policy's
//     safety limit held that pause back (then it is not paused in Smartlead either).
func Decide(mode bgv1.Mode, mb *bgv1.Mailbox, domain *bgv1.Domain) *GateAnswer {
	a := &GateAnswer{Allowed: true, Mode: mode, Reasons: []GateReason{}}
	own := mb.Status.Health
	if own != "" && own != bgv1.HealthHealthy {
		a.Reasons = append(a.Reasons, GateReason{Entity: "mailbox", Name: mb.Name, Health: own, Message: mb.Status.Evidence()})
	}
	var domainHealth bgv1.Health
	if domain != nil {
		domainHealth = domain.Status.Health
		if domainHealth != "" && domainHealth != bgv1.HealthHealthy {
			a.Reasons = append(a.Reasons, GateReason{Entity: "domain", Name: domain.Name, Health: domainHealth,
				Message: domain.Status.HealthMessage})
		}
	}
	if would, _ := protection.WouldPause(own, domainHealth); would && mode == bgv1.ModeEnforce && !heldBySafety(mb) {
		a.Allowed = false
	}
	return a
}

// heldBySafety reports whether the policy's safety limit kept this mailbox from being paused.
func heldBySafety(mb *bgv1.Mailbox) bool {
	c := meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPaused)
	return c != nil && c.Reason == bgv1.ReasonSafetyLimit && !mb.Status.Smartlead.Paused
}
