package controllers

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// urgencyClient records the priority each Smartlead call's context carries.
type urgencyClient struct {
	smartlead.Client
	mu    sync.Mutex
	calls map[int64]smartlead.Priority
}

func (c *urgencyClient) Suspend(ctx context.Context, id int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[id] = smartlead.PriorityOf(ctx)
	return nil
}

// The Smartlead calls of a pause carry PriorityEnforce and those of a drift reapply PriorityReapply, and
// the account sync's reads PrioritySync: the key's limiter spends its budget in that order.
func TestCallsCarryTheirUrgency(t *testing.T) {
	ctx := context.Background()
	pausedAt := metav1.NewTime(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeEnforce, Smartlead: bgv1.SmartleadSettings{
			APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"},
			PauseAction:      bgv1.PauseActionSuspend, Sync: bgv1.SyncSettings{Drift: bgv1.DriftReapply}}}}
	crossing := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: "acme"},
		Spec:   bgv1.MailboxSpec{Email: "ann@getacme-mail.com", SmartleadAccountID: ptr.To[int64](4711), PolicyRef: bgv1.LocalPolicyReference{Name: "default"}},
		Status: bgv1.MailboxStatus{Health: bgv1.HealthPaused}}
	drifted := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "bob", Namespace: "acme"},
		Spec: bgv1.MailboxSpec{Email: "bob@getacme-mail.com", SmartleadAccountID: ptr.To[int64](4712), PolicyRef: bgv1.LocalPolicyReference{Name: "default"}},
		Status: bgv1.MailboxStatus{Health: bgv1.HealthPaused,
			Smartlead: bgv1.SmartleadState{Paused: true, Suspended: true, Action: bgv1.PauseActionSuspend, AccountID: 4712, PausedAt: &pausedAt},
			Account:   &bgv1.AccountState{ID: 4712, Suspended: false, PausedAt: &pausedAt}}}
	b := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policy, crossing, drifted).
		WithStatusSubresource(&bgv1.Mailbox{}, &bgv1.ProtectionPolicy{}, &bgv1.Domain{})
	for _, ix := range index.Indexes {
		b = b.WithIndex(ix.Object, ix.Field, ix.Extract)
	}
	sc := &urgencyClient{calls: map[int64]smartlead.Priority{}}
	r := &MailboxReconciler{Client: b.Build(), Recorder: events.NewFakeRecorder(100), Smartlead: staticProvider{sc}}
	for _, mb := range []*bgv1.Mailbox{crossing, drifted} {
		if err := r.carryOut(ctx, client.ObjectKeyFromObject(mb)); err != nil {
			t.Fatal(err)
		}
	}
	if got := sc.calls; got[4711] != smartlead.PriorityEnforce || got[4712] != smartlead.PriorityReapply || len(got) != 2 {
		t.Fatalf("priorities by account %v; want 4711 (a pause) %d, 4712 (a reapply) %d", got, smartlead.PriorityEnforce, smartlead.PriorityReapply)
	}

	var seen smartlead.Priority = -1
	f := newSyncFleet(t, 3, 0)
	f.r.Smartlead = staticProvider{listSpy{Client: f.r.Smartlead.(staticProvider).c, seen: &seen}}
	f.r.Clock = clockAt(f.now)
	if _, err := f.r.syncWithin(ctx, f.policy(t), f.now); err != nil {
		t.Fatal(err)
	}
	if seen != smartlead.PrioritySync {
		t.Fatalf("the sync read with priority %d, want PrioritySync", seen)
	}
}

// listSpy records the priority of the sync's account listing.
type listSpy struct {
	smartlead.Client
	seen *smartlead.Priority
}

func (s listSpy) ListAccounts(ctx context.Context) ([]smartlead.Account, error) {
	*s.seen = smartlead.PriorityOf(ctx)
	return s.Client.ListAccounts(ctx)
}

// Two policies with one API key (in two Secrets) share one budget, the lowest they state; a resume with
// the credentials a pause recorded uses the key's budget as it stands; a deleted policy's budget goes.
func TestPoliciesSharingAKeyShareTheLowestBudget(t *testing.T) {
	ctx := context.Background()
	secrets := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: "acme"}, Data: map[string][]byte{"apiKey": []byte("sk-live-7f3a9c2e")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead-copy", Namespace: "acme"}, Data: map[string][]byte{"apiKey": []byte("sk-live-7f3a9c2e")}},
	).Build()
	p := &SecretSmartleadProvider{Reader: secrets, Limiters: &smartlead.Limiters{}, Accounts: &smartlead.Directories{}}
	creds := func(policy, secret string, rl bgv1.SmartleadRateLimit) Credentials {
		return Credentials{Namespace: "acme", APIKeySecretRef: &bgv1.SecretKeySelector{Name: secret, Key: "apiKey"}, Policy: policy, RateLimit: rl}
	}
	budget := func() smartlead.RateLimit { return p.Limiters.For("sk-live-7f3a9c2e").Budget() }
	for _, c := range []Credentials{
		creds("pro", "smartlead", bgv1.SmartleadRateLimit{RequestsPerMinute: 120, Burst: 10}),
		creds("trial", "smartlead-copy", bgv1.SmartleadRateLimit{RequestsPerMinute: 60, Burst: 10}),
	} {
		if _, err := p.For(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if b := budget(); b != (smartlead.RateLimit{RequestsPerMinute: 60, Burst: 10}) {
		t.Fatalf("budget %+v, want the lowest stated: 60/10", b)
	}
	if _, err := p.For(ctx, Credentials{Namespace: "acme", APIKeySecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}}); err != nil {
		t.Fatal(err)
	}
	if b := budget(); b != (smartlead.RateLimit{RequestsPerMinute: 60, Burst: 10}) {
		t.Fatalf("a resume with recorded credentials changed the budget: %+v", b)
	}
	releasePolicy(p, types.NamespacedName{Namespace: "acme", Name: "trial"})
	if b := budget(); b != (smartlead.RateLimit{RequestsPerMinute: 120, Burst: 10}) {
		t.Fatalf("budget %+v after the trial policy was deleted, want 120/10", b)
	}
}

// The operations' names are user-visible (status.smartlead.lastOperation, the action of Events): they
// never change, whatever the constants are called.
func TestOperationNamesAreStable(t *testing.T) {
	for got, want := range map[string]string{
		operationResolveAccount:      "ResolveAccount",
		operationSuspend:             "Suspend",
		operationRemoveFromCampaigns: "RemoveFromCampaigns",
		operationRestoreCampaigns:    "RestoreCampaigns",
		operationUnsuspend:           "Unsuspend",
		operationGetCampaigns:        "GetCampaigns",
		operationReadDailyLimit:      "ReadDailyLimit",
		operationZeroDailyLimit:      "ZeroDailyLimit",
		operationRestoreDailyLimit:   "RestoreDailyLimit",
		operationResume:              "Resume",
		operationReapply:             "Reapply",
	} {
		if got != want {
			t.Errorf("operation %q, want %q", got, want)
		}
	}
}
