// Command replay is the demo of `make dev`: it sends a realistic, signed Smartlead webhook stream to the
// local receiver — sends, a soft bounce, then hard bounces (real SMTP texts) on alice@acme.com and a few
// on bob@acme.com of the same domain — and shows, live, the mailboxes moving Healthy → Warning → Paused,
// the domain's state and the stand-in's Smartlead calls, then the time from alice's fifth hard bounce to
// the Smartlead call. It switches the sample policy to Enforce first (-mode to choose another).
//
//	go run ./hack/replay        # while `make dev` runs
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// Real bounce texts, as Gmail, Microsoft, Postfix and Yahoo write them; the soft one is a full mailbox.
var (
	hardBounces = []string{
		"550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550-5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-ab7d1e5c3a1si8812345a66.412 - gsmtp",
		"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup [DM6NAM12FT033.eop-nam12.prod.protection.outlook.com 2026-12-02T10:05:00.421Z 08DDB3E1C2A4F7D1]",
		"host mx.client-co.com[203.0.113.45] said: 550 5.1.1 <jordan@client-co.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
		"554 delivery error: dd This user doesn't have a yahoo.com account (sam.lee@yahoo.com) [0] - mta4212.mail.bf1.yahoo.com",
		"550 5.1.1 <pat@northwind.example>: Recipient address rejected: User unknown in local recipient table",
	}
	softBounce = "452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp"
)

type options struct {
	receiver, kubeconfig, standin, org, secret, namespace string
	mode                                                  bgv1.Mode
}

func main() {
	var o options
	var mode string
	flag.StringVar(&o.receiver, "receiver", "http://localhost:8082", "The receiver's base URL.")
	flag.StringVar(&o.kubeconfig, "dev-kubeconfig", filepath.Join(os.TempDir(), "bounceguard-dev", "kubeconfig"), "The kubeconfig make dev wrote.")
	flag.StringVar(&o.standin, "standin", "http://127.0.0.1:8090", "The stand-in Smartlead's base URL.")
	flag.StringVar(&o.org, "org", "123e4567-e89b-12d3-a456-426614174000", "The x-organization-id of the sample policy.")
	flag.StringVar(&o.secret, "webhook-secret", "replace-with-your-webhook-signing-secret", "The sample policy's webhook signing secret.")
	flag.StringVar(&o.namespace, "namespace", "acme", "The sample namespace.")
	flag.StringVar(&mode, "mode", "Enforce", "The mode the sample policy is set to before the stream (empty: leave it).")
	flag.Parse()
	o.mode = bgv1.Mode(mode)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s (is make dev running?): %w", o.kubeconfig, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		return err
	}
	if o.mode != "" {
		patch := []byte(fmt.Sprintf(`{"spec":{"mode":%q}}`, o.mode))
		if err := c.Patch(ctx, &bgv1.ProtectionPolicy{ObjectMeta: objectMeta(o.namespace, "default")},
			client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("setting the policy's mode: %w", err)
		}
		fmt.Printf("policy %s/default is now %s\n", o.namespace, o.mode)
	}
	fmt.Println("streaming signed webhooks: sends, a soft bounce, hard bounces on alice@acme.com, then on bob@acme.com")

	w := &watcher{c: c, o: o, start: time.Now(), health: map[string]string{}, seenCalls: 0}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.watch(ctx, stop) })

	post := func(sender, bounce string) error {
		return deliver(ctx, o, event(sender, bounce))
	}
	step := 120 * time.Millisecond
	for i := range 60 { // a morning of sends from both mailboxes
		for _, s := range []string{"alice@acme.com", "bob@acme.com"} {
			if err := post(s, ""); err != nil {
				return err
			}
		}
		if i%20 == 19 {
			fmt.Printf("  %s  %d sends each recorded\n", w.since(), i+1)
		}
	}
	if err := post("alice@acme.com", softBounce); err != nil {
		return err
	}
	fmt.Printf("  %s  alice@acme.com: a soft bounce (mailbox full: logged, not counted)\n", w.since())
	var fifth time.Time
	for i, text := range hardBounces {
		time.Sleep(4 * step)
		if err := post("alice@acme.com", ""); err != nil {
			return err
		}
		time.Sleep(4 * step)
		at := time.Now()
		if err := post("alice@acme.com", text); err != nil {
			return err
		}
		fmt.Printf("  %s  alice@acme.com: hard bounce %d (%s)\n", w.since(), i+1, firstLine(text))
		if i == 4 {
			fifth = at
		}
	}
	for i, text := range hardBounces[:3] {
		time.Sleep(4 * step)
		if err := post("bob@acme.com", text); err != nil {
			return err
		}
		fmt.Printf("  %s  bob@acme.com: hard bounce %d\n", w.since(), i+1)
	}

	// Wait for alice's pause to reach the stand-in, then show a little more of what follows.
	var paused time.Time
	for deadline := time.Now().Add(20 * time.Second); paused.IsZero() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		paused = w.firstCallAfter(fifth)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if paused.IsZero() {
		if o.mode != bgv1.ModeEnforce {
			fmt.Printf("\nno Smartlead call: the policy is %s, which only records and recommends\n", o.mode)
			return nil
		}
		return fmt.Errorf("no Smartlead call within 20 s of alice's fifth hard bounce")
	}
	fmt.Printf("\nalice@acme.com: fifth hard bounce sent → Smartlead called %s later\n", paused.Sub(fifth).Round(time.Millisecond))
	fmt.Printf("see it all: KUBECONFIG=%s kubectl get mailboxes,domains -n %s; kubectl describe mailbox alice-acme-com -n %s\n",
		o.kubeconfig, o.namespace, o.namespace)
	return nil
}

// watcher prints the mailboxes' and domains' health changes and the stand-in's new calls as they happen.
type watcher struct {
	c         client.Client
	o         options
	start     time.Time
	health    map[string]string
	mu        sync.Mutex
	calls     []standin.Call
	seenCalls int
}

func (w *watcher) since() string { return fmt.Sprintf("%6.2fs", time.Since(w.start).Seconds()) }

func (w *watcher) watch(ctx context.Context, stop chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		w.poll(ctx)
		select {
		case <-stop:
			w.poll(ctx)
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *watcher) poll(ctx context.Context) {
	var mbs bgv1.MailboxList
	if err := w.c.List(ctx, &mbs, client.InNamespace(w.o.namespace)); err == nil {
		for _, mb := range mbs.Items {
			state := string(mb.Status.Health)
			if p := meta.FindStatusCondition(mb.Status.Conditions, bgv1.ConditionPaused); p != nil && p.Status == "True" {
				state += ", paused in Smartlead"
			}
			w.report("mailbox "+mb.Spec.Email, state, mb.Status.Window, mb.Status.Evidence())
		}
	}
	var ds bgv1.DomainList
	if err := w.c.List(ctx, &ds, client.InNamespace(w.o.namespace)); err == nil {
		for _, d := range ds.Items {
			w.report("domain "+d.Name, string(d.Status.Health), "", d.Status.HealthMessage)
		}
	}
	resp, err := http.Get(w.o.standin + "/_standin/calls")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var calls []standin.Call
	if json.NewDecoder(resp.Body).Decode(&calls) != nil {
		return
	}
	w.mu.Lock()
	w.calls = calls
	w.mu.Unlock()
	for ; w.seenCalls < len(calls); w.seenCalls++ {
		call := calls[w.seenCalls]
		fmt.Printf("  %s  Smartlead ← %s %s → %d\n", w.since(), call.Method, call.Path, call.Code)
	}
}

func (w *watcher) report(what, state, window, evidence string) {
	if state == "" || w.health[what] == state {
		return
	}
	from := w.health[what]
	w.health[what] = state
	if from == "" {
		return // the state before the stream
	}
	line := fmt.Sprintf("  %s  %s: %s → %s", w.since(), what, from, state)
	if window != "" {
		line += " (window " + window + ")"
	}
	if evidence != "" {
		line += ": " + evidence
	}
	fmt.Println(line)
}

// firstCallAfter is when the stand-in received its first pause call after t (zero: none yet).
func (w *watcher) firstCallAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.calls {
		if c.At.After(t) && (c.Method == http.MethodPut || c.Method == http.MethodPost || c.Method == http.MethodDelete) {
			return c.At
		}
	}
	return time.Time{}
}

var seq = rand.IntN(1 << 30)

// event is a flat-shape Smartlead webhook with a real-looking message id and lead; bounce "" is a send.
func event(sender, bounce string) []byte {
	seq++
	lead := fmt.Sprintf("lead%d@client-co.com", seq)
	p := map[string]any{"event_type": "EMAIL_SENT", "from_email": sender, "to_email": lead, "campaign_id": 4242,
		"sequence_number": 1, "event_timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"sent_message": map[string]any{"message_id": fmt.Sprintf("<CAGk%x.%d@mail.gmail.com>", rand.Uint64(), seq)}}
	if bounce != "" {
		p["event_type"], p["bounce_message"] = "EMAIL_BOUNCE", bounce
	}
	data, _ := json.Marshal(p)
	return data
}

// deliver posts a signed event, retrying (as Smartlead does) until it is acknowledged.
func deliver(ctx context.Context, o options, body []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.receiver+webhookreceiver.WebhookPath, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Organization-Id", o.org)
		req.Header.Set("X-Smartlead-Signature", webhookreceiver.Sign(body, o.secret))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("the receiver answered %s (is make dev running with the samples?)", resp.Status)
			}
		} else if attempt == 0 {
			return fmt.Errorf("the receiver at %s: %w (is make dev running?)", o.receiver, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 70 {
		s = s[:70] + "…"
	}
	return s
}

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
