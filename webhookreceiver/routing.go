package webhookreceiver

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/trust"
)

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
