package controllers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
)

// mailboxFacts is what a policy's counts and its safety limit need to know of one Mailbox.
type mailboxFacts struct {
	policy            string
	health            bgv1.Health
	pausedInSmartlead bool // its Paused condition is True (what PAUSED columns count)
	holdsPause        bool // bounceguard holds a pause, or a step of one, in Smartlead for it
	safetyHeld        bool // a pause it needs is held back by the safety limit
	heldMessage       string
}

func factsOf(mb *bgv1.Mailbox) mailboxFacts {
	f := mailboxFacts{policy: mb.PolicyName(), health: mb.Status.Health, pausedInSmartlead: pausedInSmartlead(mb),
		holdsPause: holdsPause(&mb.Status.Smartlead)}
	if c := meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPaused); c != nil && c.Reason == bgv1.ReasonSafetyLimit {
		f.safetyHeld, f.heldMessage = true, c.Message
	}
	return f
}

// PolicyCounts are a policy's mailboxes counted by state.
type PolicyCounts struct {
	// Mailboxes, Healthy, Warning, Paused and Recovering count the mailboxes by health.
	Mailboxes, Healthy, Warning, Paused, Recovering int32
	// PausedInSmartlead counts the mailboxes whose Paused condition is True.
	PausedInSmartlead int32
	// HoldingPause counts the mailboxes bounceguard holds paused (or part way) in Smartlead.
	HoldingPause int32
	// SafetyHeld counts the mailboxes whose pause the safety limit holds back; HeldMessage is one's reason.
	SafetyHeld  int32
	HeldMessage string
}

// add counts f in (sign 1) or out (sign -1).
func (c *PolicyCounts) add(f mailboxFacts, sign int32) {
	c.Mailboxes += sign
	switch f.health {
	case bgv1.HealthWarning:
		c.Warning += sign
	case bgv1.HealthPaused:
		c.Paused += sign
	case bgv1.HealthRecovering:
		c.Recovering += sign
	default:
		c.Healthy += sign
	}
	if f.pausedInSmartlead {
		c.PausedInSmartlead += sign
	}
	if f.holdsPause {
		c.HoldingPause += sign
	}
	if f.safetyHeld {
		c.SafetyHeld += sign
		if sign > 0 {
			c.HeldMessage = f.heldMessage
		}
	}
	if c.SafetyHeld == 0 {
		c.HeldMessage = ""
	}
}

// fleetView answers what the reconcilers need to know of a policy's mailboxes.
type fleetView interface {
	// Counts are the policy's mailboxes counted by state.
	Counts(policy types.NamespacedName) PolicyCounts
	// facts are one mailbox's; false when it is not known.
	facts(mailbox types.NamespacedName) (mailboxFacts, bool)
}

// Fleet keeps every policy's counts up to date from the Mailbox informer's events, so that neither a
// policy's status nor the safety limit lists the policy's mailboxes: the cost of one event or one
// transition does not grow with the fleet. It runs on every replica; the policy controller it feeds
// runs on the leader.
type Fleet struct {
	mu        sync.RWMutex
	mailboxes map[types.NamespacedName]mailboxFacts
	policies  map[types.NamespacedName]*PolicyCounts
	reg       toolscache.ResourceEventHandlerRegistration
	queue     queueSource
}

// NewFleet returns a Fleet that watches the manager's Mailbox informer.
func NewFleet(mgr interface{ GetCache() cache.Cache }) (*Fleet, error) {
	informer, err := mgr.GetCache().GetInformer(context.Background(), &bgv1.Mailbox{})
	if err != nil {
		return nil, fmt.Errorf("watching Mailboxes to count them: %w", err)
	}
	f := &Fleet{}
	return f, f.Watch(informer)
}

// Watch registers the fleet with the Mailbox informer.
func (f *Fleet) Watch(informer interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}) error {
	f.mu.Lock()
	f.mailboxes = map[types.NamespacedName]mailboxFacts{}
	f.policies = map[types.NamespacedName]*PolicyCounts{}
	f.mu.Unlock()
	reg, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.observe(obj, false) },
		UpdateFunc: func(_, cur any) { f.observe(cur, false) },
		DeleteFunc: func(obj any) { f.observe(obj, true) },
	})
	f.mu.Lock()
	f.reg = reg
	f.mu.Unlock()
	return err
}

// Synced reports whether the fleet has seen every Mailbox the informer listed at start.
func (f *Fleet) Synced() bool {
	if f == nil {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.reg != nil && f.reg.HasSynced()
}

// Source is a controller source that requests a reconcile of each policy whose counts change.
func (f *Fleet) Source() source.Source { return f.queue.Source() }

func (f *Fleet) observe(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	mb, ok := obj.(*bgv1.Mailbox)
	if !ok {
		return
	}
	key := client.ObjectKeyFromObject(mb)
	cur := factsOf(mb)
	f.mu.Lock()
	old, had := f.mailboxes[key]
	if had && !deleted && old == cur {
		f.mu.Unlock()
		return
	}
	var changed []types.NamespacedName
	if had {
		p := types.NamespacedName{Namespace: key.Namespace, Name: old.policy}
		f.countsOf(p).add(old, -1)
		if f.policies[p].Mailboxes == 0 {
			delete(f.policies, p)
		}
		changed = append(changed, p)
	}
	if deleted {
		delete(f.mailboxes, key)
	} else {
		f.mailboxes[key] = cur
		p := types.NamespacedName{Namespace: key.Namespace, Name: cur.policy}
		f.countsOf(p).add(cur, 1)
		if !had || old.policy != cur.policy {
			changed = append(changed, p)
		}
	}
	f.mu.Unlock()
	for _, p := range changed {
		f.queue.Add(reconcile.Request{NamespacedName: p})
	}
}

func (f *Fleet) countsOf(p types.NamespacedName) *PolicyCounts {
	c := f.policies[p]
	if c == nil {
		c = &PolicyCounts{}
		f.policies[p] = c
	}
	return c
}

// Counts implements fleetView.
func (f *Fleet) Counts(policy types.NamespacedName) PolicyCounts {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if c := f.policies[policy]; c != nil {
		return *c
	}
	return PolicyCounts{}
}

// facts implements fleetView.
func (f *Fleet) facts(mailbox types.NamespacedName) (mailboxFacts, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.mailboxes[mailbox]
	return m, ok
}

// listedFleet is a fleetView of one policy's mailboxes as listed from the cache: what the reconcilers
// use until the Fleet has synced.
type listedFleet struct {
	policy    types.NamespacedName
	counts    PolicyCounts
	mailboxes map[types.NamespacedName]mailboxFacts
}

func (l *listedFleet) Counts(policy types.NamespacedName) PolicyCounts {
	if policy != l.policy {
		return PolicyCounts{}
	}
	return l.counts
}

func (l *listedFleet) facts(mailbox types.NamespacedName) (mailboxFacts, bool) {
	m, ok := l.mailboxes[mailbox]
	return m, ok
}

// viewOf returns the fleet when it has synced, else a view listed from c of the policy's mailboxes.
func viewOf(ctx context.Context, c client.Reader, fleet *Fleet, policy types.NamespacedName) (fleetView, error) {
	if fleet.Synced() {
		return fleet, nil
	}
	var list bgv1.MailboxList
	if err := c.List(ctx, &list, client.InNamespace(policy.Namespace), client.MatchingFields{index.MailboxPolicy: policy.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	l := &listedFleet{policy: policy, mailboxes: make(map[types.NamespacedName]mailboxFacts, len(list.Items))}
	for i := range list.Items {
		f := factsOf(&list.Items[i])
		l.mailboxes[client.ObjectKeyFromObject(&list.Items[i])] = f
		l.counts.add(f, 1)
	}
	return l, nil
}
