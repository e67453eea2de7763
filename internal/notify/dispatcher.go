// Package notify announces protection transitions outside Kubernetes: to Slack incoming webhooks and to
// generic JSON webhooks, each URL read from a Secret. Notices are queued per target and never block the
// caller; a burst (a domain cascade) becomes one grouped message; each target is rate-limited, failed
// deliveries are retried with backoff, and what was given up on is counted and reported in the policy's
// status.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Defaults of a Dispatcher's tuning.
const (
	DefaultWindow     = 2 * time.Second
	DefaultLimit      = rate.Limit(1) // messages per second per target
	DefaultBurst      = 3
	DefaultBackoff    = time.Second
	DefaultAttempts   = 5
	DefaultMaxPending = 500
	// maxRetryAfter caps how long a target's Retry-After is honoured.
	maxRetryAfter = time.Minute
)

// Dispatcher delivers notices to the targets of each policy. It is a manager Runnable that runs on the
// leader (which alone reconciles, and so alone has transitions to announce). Zero fields take the defaults.
type Dispatcher struct {
	// Secrets reads the Secrets holding the targets' URLs.
	Secrets client.Reader
	// HTTP sends the messages; default: a client with a 10 s timeout.
	HTTP *http.Client
	// Window is how long a target gathers notices into one message after the first.
	Window time.Duration
	// Limit and Burst rate-limit each target's messages.
	Limit rate.Limit
	Burst int
	// Backoff is the first wait before a retry; it doubles for each further attempt.
	Backoff time.Duration
	// Attempts is how many times a message is tried before it is given up on.
	Attempts int
	// MaxPending bounds the notices waiting for one target; beyond it the oldest are dropped (and counted).
	MaxPending int
	// Changed is called when a policy's delivery status changed (to write it into the policy's status).
	Changed func(policy types.NamespacedName)

	mu      sync.Mutex
	ctx     context.Context
	targets map[targetKey]*target
}

// targetKey identifies a target: a changed spec (another URL Secret, another type) is another target.
type targetKey struct {
	policy types.NamespacedName
	index  int
	typ    bgv1.NotificationType
	secret bgv1.SecretKeySelector
}

// keyOf is the key of policy's i-th notification target.
func keyOf(policy *bgv1.ProtectionPolicy, i int) targetKey {
	spec := &policy.Spec.Notifications[i]
	return targetKey{policy: types.NamespacedName{Namespace: policy.Namespace, Name: policy.Name}, index: i,
		typ: spec.Type, secret: spec.URLSecretRef}
}

type target struct {
	key     targetKey
	mode    bgv1.Mode
	pending []bgv1.Notice
	wake    chan struct{}
	limiter *rate.Limiter
	status  bgv1.NotificationStatus
	// retired is set when the target is no longer in its policy's spec (or the policy is gone): it
	// delivers what it holds, then goes.
	retired bool
}

// NeedLeaderElection is true: only the leader has transitions to announce.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start delivers until ctx ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	for _, t := range d.targets {
		go d.run(ctx, t)
	}
	d.mu.Unlock()
	<-ctx.Done()
	return nil
}

// Notify queues n for every target of policy that wants its kind, and returns at once.
func (d *Dispatcher) Notify(policy *bgv1.ProtectionPolicy, n bgv1.Notice) {
	if d == nil || len(policy.Spec.Notifications) == 0 {
		return
	}
	if n.At.IsZero() {
		n.At = time.Now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.targets == nil {
		d.targets = map[targetKey]*target{}
	}
	for i := range policy.Spec.Notifications {
		spec := &policy.Spec.Notifications[i]
		if !spec.Wants(n.Event) {
			continue
		}
		key := keyOf(policy, i)
		t, ok := d.targets[key]
		if !ok {
			t = &target{key: key, wake: make(chan struct{}, 1), limiter: rate.NewLimiter(d.limit(), d.burst()),
				status: bgv1.NotificationStatus{Index: int32(i), Type: spec.Type}}
			d.targets[key] = t
			if d.ctx != nil {
				go d.run(d.ctx, t)
			}
		}
		t.mode, t.retired = policy.Spec.Mode, false // named by the spec again
		t.pending = append(t.pending, n)
		if over := len(t.pending) - d.maxPending(); over > 0 {
			t.pending = append(t.pending[:0:0], t.pending[over:]...)
			t.status.Failed += int64(over)
			notifications.WithLabelValues(string(spec.Type), "dropped").Add(float64(over))
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Status is the delivery status of each of policy's targets, in spec order.
func (d *Dispatcher) Status(policy *bgv1.ProtectionPolicy) []bgv1.NotificationStatus {
	var out []bgv1.NotificationStatus
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, spec := range policy.Spec.Notifications {
		st := bgv1.NotificationStatus{Index: int32(i), Type: spec.Type}
		if t, ok := d.targets[keyOf(policy, i)]; ok {
			st = *t.status.DeepCopy()
		}
		out = append(out, st)
	}
	return out
}

// Retain lets go of the targets of a policy that its spec no longer names (another URL Secret, another
// type, fewer targets), or all of them when policy is nil (it was deleted): each delivers the notices it
// holds, then goes. A key rotation or a deleted policy leaves nothing behind.
func (d *Dispatcher) Retain(name types.NamespacedName, policy *bgv1.ProtectionPolicy) {
	if d == nil {
		return
	}
	keep := map[targetKey]bool{}
	if policy != nil {
		for i := range policy.Spec.Notifications {
			keep[keyOf(policy, i)] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for key, t := range d.targets {
		if key.policy != name || keep[key] {
			continue
		}
		t.retired = true
		if len(t.pending) == 0 || d.ctx == nil {
			delete(d.targets, key)
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Targets is how many notification targets are held.
func (d *Dispatcher) Targets() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.targets)
}

// done reports whether a retired target has delivered all it held, and lets it go if so.
func (d *Dispatcher) done(t *target) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !t.retired || len(t.pending) > 0 {
		return false
	}
	if d.targets[t.key] == t {
		delete(d.targets, t.key)
	}
	return true
}

// run delivers one target's notices: it waits for the first, gathers for the window, and sends them as
// one message, within the target's rate limit. A retired target ends once it holds nothing more.
func (d *Dispatcher) run(ctx context.Context, t *target) {
	for {
		if d.done(t) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		if d.done(t) {
			return
		}
		if !sleep(ctx, d.window()) {
			return
		}
		if err := t.limiter.Wait(ctx); err != nil {
			return
		}
		d.mu.Lock()
		batch, mode := t.pending, t.mode
		t.pending = nil
		d.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		err := d.deliver(ctx, t, mode, batch)
		if ctx.Err() != nil {
			return
		}
		now := metav1.Now()
		d.mu.Lock()
		if err != nil {
			t.status.Failed++
			// Bounded as the API bounds it: an error naming a long Secret must not make the policy's status unwritable.
			t.status.LastError, t.status.LastFailureTime = truncate(err.Error(), maxLastError-1), &now
		} else {
			t.status.Delivered++
			t.status.LastDeliveryTime = &now
		}
		d.mu.Unlock()
		if err != nil {
			notifications.WithLabelValues(string(t.key.typ), "failed").Inc()
			log.FromContext(ctx).Info("notification given up on", "policy", t.key.policy.String(), "target", t.key.index,
				"type", t.key.typ, "notices", len(batch), "error", err.Error())
		} else {
			notifications.WithLabelValues(string(t.key.typ), "delivered").Inc()
		}
		if d.Changed != nil {
			d.Changed(t.key.policy)
		}
	}
}

// deliver sends one message, retrying with backoff (or the target's Retry-After) up to Attempts times.
func (d *Dispatcher) deliver(ctx context.Context, t *target, mode bgv1.Mode, batch []bgv1.Notice) error {
	body, err := Render(t.key.typ, t.key.policy, mode, batch)
	if err != nil {
		return err
	}
	wait := d.backoff()
	var last error
	for attempt := 0; attempt < d.attempts(); attempt++ {
		if attempt > 0 {
			notifications.WithLabelValues(string(t.key.typ), "retried").Inc()
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
			wait *= 2
		}
		var retryAfter time.Duration
		retryAfter, last = d.post(ctx, t.key, body)
		if last == nil {
			return nil
		}
		wait = max(wait, retryAfter)
	}
	return last
}

// post sends body to the target's URL once. Its errors never carry the URL (a Slack webhook URL is itself
// the secret): only what kind of failure it was.
func (d *Dispatcher) post(ctx context.Context, key targetKey, body []byte) (retryAfter time.Duration, err error) {
	var secret corev1.Secret
	if err := d.Secrets.Get(ctx, types.NamespacedName{Namespace: key.policy.Namespace, Name: key.secret.Name}, &secret); err != nil {
		return 0, fmt.Errorf("reading the URL Secret %q failed", key.secret.Name)
	}
	url := strings.TrimSpace(string(secret.Data[key.secret.Key]))
	if url == "" {
		return 0, fmt.Errorf("Secret %q has no key %q", key.secret.Name, key.secret.Key)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the URL in the Secret is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bounceguard")
	resp, err := d.client().Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, errors.New("the request timed out")
		}
		return 0, errors.New("the request failed (connection refused, DNS or TLS)")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	return retryAfter, fmt.Errorf("the target answered %s", resp.Status)
}

// maxLastError is the API's bound on a notification target's status.lastError, in characters.
const maxLastError = 256

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func (d *Dispatcher) client() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

func (d *Dispatcher) window() time.Duration  { return orDefault(d.Window, DefaultWindow) }
func (d *Dispatcher) backoff() time.Duration { return orDefault(d.Backoff, DefaultBackoff) }
func (d *Dispatcher) attempts() int          { return orDefault(d.Attempts, DefaultAttempts) }
func (d *Dispatcher) maxPending() int        { return orDefault(d.MaxPending, DefaultMaxPending) }
func (d *Dispatcher) burst() int             { return orDefault(d.Burst, DefaultBurst) }
func (d *Dispatcher) limit() rate.Limit      { return orDefault(d.Limit, DefaultLimit) }

func orDefault[T int | time.Duration | rate.Limit](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
