package webhookreceiver

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/protection"
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

// serveGate answers GET /v1/gate?mailbox=<email>[&namespace=<ns>] from the informer cache.
func (s *Server) serveGate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"method " + r.Method + " not allowed; use GET"})
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("mailbox")))
	if email == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{"missing mailbox query parameter"})
		return
	}
	answer, code, msg := s.gate(r.Context(), email, r.URL.Query().Get("namespace"))
	if code != http.StatusOK {
		writeJSON(w, code, errorBody{msg})
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Server) gate(ctx context.Context, email, namespace string) (*GateAnswer, int, string) {
	var list bgv1.MailboxList
	opts := []client.ListOption{client.MatchingFields{IndexMailboxEmail: email}}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := s.Client.List(ctx, &list, opts...); err != nil {
		return nil, http.StatusServiceUnavailable, "looking up the mailbox failed"
	}
	switch len(list.Items) {
	case 0:
		return nil, http.StatusNotFound, "unknown mailbox"
	case 1:
	default:
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Namespace < list.Items[j].Namespace })
		return nil, http.StatusConflict, "mailbox exists in several namespaces; pass namespace"
	}
	mb := &list.Items[0]
	var policy bgv1.ProtectionPolicy
	mode := bgv1.ModeObserve
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: mb.PolicyName()}, &policy); err == nil && policy.Spec.Mode != "" {
		mode = policy.Spec.Mode
	}
	var domain *bgv1.Domain
	if name := mb.Domain(); name != "" {
		d := &bgv1.Domain{}
		if err := s.Client.Get(ctx, types.NamespacedName{Namespace: mb.Namespace, Name: name}, d); err == nil {
			domain = d
		}
	}
	return Decide(mode, mb, domain), http.StatusOK, ""
}

// Decide is the gate's rule (SPEC §3), over the mailbox and its domain as the cache holds them:
//   - every entity that is not Healthy is listed in the reasons, with the evidence for its health;
//   - Observe and Suggest always allow (the reasons say why Enforce would not);
//   - Enforce blocks a mailbox whose own health is Paused or whose domain is Paused, unless the policy's
//     safety limit held that pause back (then it is not paused in Smartlead either).
func Decide(mode bgv1.Mode, mb *bgv1.Mailbox, domain *bgv1.Domain) *GateAnswer {
	a := &GateAnswer{Allowed: true, Mode: mode, Reasons: []GateReason{}}
	own := mb.Status.Health
	if own != "" && own != bgv1.HealthHealthy {
		a.Reasons = append(a.Reasons, GateReason{Entity: "mailbox", Name: mb.Name, Health: own, Message: mb.Status.HealthMessage})
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
	return c != nil && c.Reason == protection.ReasonSafetyLimit && !mb.Status.Smartlead.Paused
}
