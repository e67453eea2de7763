package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

// sink is a notification target: it records what it receives and answers with the codes it is given
// (then 200).
type sink struct {
	mu     sync.Mutex
	codes  []int
	bodies []string
	at     []time.Time
	srv    *httptest.Server
}

func newSink(t *testing.T, codes ...int) *sink {
	s := &sink{codes: codes}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(body))
		s.at = append(s.at, time.Now())
		code := http.StatusOK
		if len(s.codes) > 0 {
			code, s.codes = s.codes[0], s.codes[1:]
		}
		s.mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func (s *sink) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

const secretPath = "/services/T000/B000/XXXX-secret-token"

// fixture is a Dispatcher whose policy has one target of typ pointing at the sink.
func fixture(t *testing.T, typ bgv1.NotificationType, s *sink, tune func(*Dispatcher)) (*Dispatcher, *bgv1.ProtectionPolicy, chan types.NamespacedName) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alerts", Namespace: "acme"},
		Data: map[string][]byte{"url": []byte(s.srv.URL + secretPath + "\n")}}
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "acme"},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeEnforce, Notifications: []bgv1.NotificationTarget{{Type: typ,
			URLSecretRef: bgv1.SecretKeySelector{Name: "alerts", Key: "url"}}}}}
	changed := make(chan types.NamespacedName, 100)
	d := &Dispatcher{Secrets: fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(secret).Build(),
		Window: 200 * time.Millisecond, Backoff: 50 * time.Millisecond, Limit: 100, Burst: 10,
		Changed: func(p types.NamespacedName) { changed <- p }}
	if tune != nil {
		tune(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = d.Start(ctx) }()
	return d, policy, changed
}

func waitChanged(t *testing.T, changed chan types.NamespacedName) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery outcome within 30 s")
	}
}

var cascade = []bgv1.Notice{
	{Event: bgv1.NotifyPaused, Mailbox: "ann@acme.io", Domain: "acme.io", Evidence: "5 bounces in the last 100 sends (pause at 5/100)"},
	{Event: bgv1.NotifyPaused, Mailbox: "bob@acme.io", Domain: "acme.io", Evidence: "5 bounces in the last 80 sends (pause at 5/100)"},
	{Event: bgv1.NotifyDomainPaused, Domain: "acme.io", Evidence: "2 of 3 mailboxes unhealthy (67%, pause at 50%)"},
	{Event: bgv1.NotifyPaused, Mailbox: "cyd@acme.io", Domain: "acme.io", Evidence: "its domain acme.io is paused"},
}

// A burst (a domain cascade) is one Slack message with blocks: a summary counting each kind, one line per
// notice with its evidence, and the policy and mode.
func TestCascadeIsOneSlackMessage(t *testing.T) {
	s := newSink(t)
	d, policy, changed := fixture(t, bgv1.NotificationSlack, s, nil)
	for _, n := range cascade {
		d.Notify(policy, n)
	}
	waitChanged(t, changed)
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("%d messages for one cascade: %v", len(got), got)
	}
	var msg slack.WebhookMessage
	if err := json.Unmarshal([]byte(got[0]), &msg); err != nil {
		t.Fatalf("not a Slack webhook message: %v\n%s", err, got[0])
	}
	if want := "bounceguard, acme/default (Enforce): 3 Paused, 1 DomainPaused"; msg.Text != want {
		t.Errorf("text %q, want %q", msg.Text, want)
	}
	if msg.Blocks == nil || len(msg.Blocks.BlockSet) != 3 {
		t.Fatalf("blocks: %+v", msg.Blocks)
	}
	for _, want := range []string{"Paused: ann@acme.io (acme.io): 5 bounces in the last 100 sends (pause at 5/100)",
		"DomainPaused: acme.io: 2 of 3 mailboxes unhealthy (67%, pause at 50%)", "cyd@acme.io", "ProtectionPolicy acme/default · mode Enforce"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("the message lacks %q:\n%s", want, got[0])
		}
	}
	st := d.Status(policy)
	if len(st) != 1 || st[0].Delivered != 1 || st[0].Failed != 0 || st[0].LastDeliveryTime == nil {
		t.Fatalf("status %+v", st)
	}
}

// The generic webhook gets the same notices as JSON, one document per message.
func TestWebhookDocument(t *testing.T) {
	s := newSink(t)
	d, policy, changed := fixture(t, bgv1.NotificationWebhook, s, nil)
	d.Notify(policy, cascade[0])
	waitChanged(t, changed)
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	var doc struct {
		Summary, Namespace, Policy, Mode string
		Notices                          []bgv1.Notice
	}
	if err := json.Unmarshal([]byte(got[0]), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Namespace != "acme" || doc.Policy != "default" || doc.Mode != "Enforce" || len(doc.Notices) != 1 ||
		doc.Notices[0].Mailbox != "ann@acme.io" || doc.Notices[0].Event != bgv1.NotifyPaused ||
		doc.Summary != "Paused: ann@acme.io (acme.io): 5 bounces in the last 100 sends (pause at 5/100)" {
		t.Fatalf("document %+v", doc)
	}
}

// A target that fails is retried with backoff (429's Retry-After honoured), and the message is delivered once.
func TestRetriedUntilDelivered(t *testing.T) {
	s := newSink(t, http.StatusInternalServerError, http.StatusTooManyRequests)
	d, policy, changed := fixture(t, bgv1.NotificationSlack, s, nil)
	d.Notify(policy, cascade[0])
	waitChanged(t, changed)
	at := s.times()
	if len(at) != 3 {
		t.Fatalf("%d attempts, want 3 (500, 429, 200)", len(at))
	}
	if gap := at[2].Sub(at[1]); gap < time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
	}
	if st := d.Status(policy)[0]; st.Delivered != 1 || st.Failed != 0 {
		t.Fatalf("status %+v", st)
	}
}

// A target that keeps failing is given up on after Attempts; the failure is in the status, without the
// URL (which for Slack is itself the secret).
func TestGivenUpOnAndReported(t *testing.T) {
	s := newSink(t, 500, 500, 500, 500, 500, 500)
	d, policy, changed := fixture(t, bgv1.NotificationSlack, s, func(d *Dispatcher) { d.Attempts = 3 })
	d.Notify(policy, cascade[0])
	waitChanged(t, changed)
	if n := len(s.received()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	st := d.Status(policy)[0]
	if st.Delivered != 0 || st.Failed != 1 || st.LastFailureTime == nil || st.LastError != "the target answered 500 Internal Server Error" {
		t.Fatalf("status %+v", st)
	}

	// Unreachable: the error says so, and names neither the URL nor its host.
	s.srv.Close()
	d.Notify(policy, cascade[1])
	waitChanged(t, changed)
	st = d.Status(policy)[0]
	if st.Failed != 2 || strings.Contains(st.LastError, "127.0.0.1") || strings.Contains(st.LastError, "secret") ||
		!strings.Contains(st.LastError, "failed") {
		t.Fatalf("status %+v", st)
	}
}

// Messages to one target keep to its rate limit, and a burst beyond the bound drops the oldest (counted).
func TestRateLimitedAndBounded(t *testing.T) {
	s := newSink(t)
	d, policy, changed := fixture(t, bgv1.NotificationWebhook, s, func(d *Dispatcher) {
		d.Limit, d.Burst, d.Window, d.MaxPending = 4, 1, time.Millisecond, 3
	})
	for i := range 4 {
		d.Notify(policy, cascade[i%len(cascade)])
		waitChanged(t, changed)
	}
	at := s.times()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 200*time.Millisecond { // 250 ms apart, less the requests' own jitter
			t.Errorf("message %d came %s after the one before, faster than 4 a second", i, gap)
		}
	}
	d.mu.Lock()
	for range 5 { // more than MaxPending at once, before the target can take any
		for _, tg := range d.targets {
			tg.pending = append(tg.pending, cascade[0])
		}
	}
	d.mu.Unlock()
	d.Notify(policy, cascade[2])
	waitChanged(t, changed)
	st := d.Status(policy)[0]
	if st.Failed != 3 { // 6 waiting, bound 3
		t.Fatalf("status %+v", st)
	}
	last := s.received()[len(s.received())-1]
	if !strings.Contains(last, "DomainPaused") {
		t.Fatalf("the newest notice was dropped: %s", last)
	}
}

// A policy's targets take only the kinds they ask for; a policy without targets costs nothing.
func TestEventsFilter(t *testing.T) {
	s := newSink(t)
	d, policy, changed := fixture(t, bgv1.NotificationWebhook, s, nil)
	policy.Spec.Notifications[0].Events = []bgv1.NotificationEvent{bgv1.NotifyDomainPaused}
	for _, n := range cascade {
		d.Notify(policy, n)
	}
	d.Notify(&bgv1.ProtectionPolicy{}, cascade[0])
	waitChanged(t, changed)
	got := s.received()
	if len(got) != 1 || strings.Contains(got[0], `"Paused"`) || !strings.Contains(got[0], "DomainPaused") {
		t.Fatalf("messages %v", got)
	}
}

// A rotated notification Secret, or a deleted policy, leaves no target behind: Retain lets go of the
// targets the spec no longer names, once each has delivered what it held.
func TestRetainLetsGoOfTargetsNoLongerNamed(t *testing.T) {
	s := newSink(t)
	d, policy, changed := fixture(t, bgv1.NotificationWebhook, s, nil)
	d.Notify(policy, cascade[0])
	waitChanged(t, changed)
	rotated := policy.DeepCopy()
	rotated.Spec.Notifications[0].URLSecretRef.Name = "alerts-2026-12"
	d.Notify(rotated, cascade[1]) // its Secret does not exist: the notice is held and retried
	d.Notify(policy, cascade[2])  // the old target still holds a notice when the spec changes
	name := types.NamespacedName{Namespace: "acme", Name: "default"}
	d.Retain(name, rotated)
	waitChanged(t, changed) // the old target delivers what it held ...
	for d.Targets() != 1 {  // ... and goes
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.received(); len(got) != 2 || !strings.Contains(got[1], "DomainPaused") {
		t.Fatalf("the retired target's last notice was not delivered: %v", got)
	}
	d.Retain(name, nil) // the policy is deleted
	for d.Targets() != 0 {
		time.Sleep(10 * time.Millisecond)
	}
}
