// Command fleetscale measures the manager at fleet scale, as a process of its own against envtest:
// N mailboxes over D domains, each created with a full de-duplication memory and rolling window (seeded
// through the tally package, not millions of events over HTTP). It reports
//   - the time from the manager's start to every Domain aggregated and the policy counted,
//   - the manager's resident memory (VmRSS) at rest and after the load,
//   - events/s the receiver records from 32 concurrent senders spread over the fleet, against the ceiling,
//   - the time a policy mode change takes to reach every mailbox,
//   - detection under a background load of webhooks: threshold-crossing bounce → Smartlead suspend, p50/p99,
//   - the raw status-write ceiling of this API server, measured in the same run, as the baseline.
//
// Run it with `make e2e` (MAILBOXES=10000 by default); it needs KUBEBUILDER_ASSETS.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/internal/testenv"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

const (
	ns       = "fleet"
	org      = "org-fleet"
	apiKey   = "sk-fleet-DO-NOT-LOG"
	whSecret = "whsec-fleet-DO-NOT-LOG"
)

func main() {
	n := flag.Int("mailboxes", 10000, "Mailboxes to create.")
	domains := flag.Int("domains", 200, "Domains they are spread over.")
	targets := flag.Int("targets", 40, "Mailboxes driven over the pause threshold to measure detection.")
	loadRate := flag.Float64("load", 100, "Background webhooks per second during the detection measurement.")
	managerArgs := flag.String("manager-args", "", "More flags for the manager, space-separated (e.g. --mailbox-concurrency=16).")
	managerEnv := flag.String("manager-env", "", "More environment for the manager, space-separated (e.g. GOMEMLIMIT=128MiB).")
	ingestFor := flag.Duration("ingest", 20*time.Second, "How long 32 concurrent senders post events spread over the fleet to measure ingestion (0: skip).")
	through := flag.String("through", "detect", "The last phase to run: rest (aggregation and RSS), ingest, mode or detect.")
	profile := flag.Bool("profile", false, "Serve the manager's pprof and plain metrics; keep a heap profile at rest and, on a missed detection, a goroutine dump, the queue metrics and the mailbox's status.")
	flag.Parse()
	profiling, ingestDuration, lastPhase = *profile, *ingestFor, *through
	if !slices.Contains([]string{"rest", "ingest", "mode", "detect"}, lastPhase) {
		fmt.Fprintln(os.Stderr, "fleetscale: -through must be rest, ingest, mode or detect")
		os.Exit(2)
	}
	extraArgs, extraEnv = strings.Fields(*managerArgs), strings.Fields(*managerEnv)
	ctrllog.SetLogger(logr.Discard())
	if err := run(*n, *domains, *targets, *loadRate); err != nil {
		fmt.Fprintln(os.Stderr, "fleetscale:", err)
		os.Exit(1)
	}
}

// extraArgs and extraEnv are passed to the manager.
var extraArgs, extraEnv []string

// ingestDuration is -ingest; lastPhase is -through.
var (
	ingestDuration time.Duration
	lastPhase      string
)

// profiling is -profile: the manager serves pprof and plain metrics, and the tool keeps what they show.
var profiling bool

func step(format string, args ...any) {
	fmt.Printf("[fleetscale %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(n, domains, targets int, loadRate float64) error {
	ctx := context.Background()
	step("starting envtest")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	c := env.Client

	sl := standin.New(apiKey, "/api/v1")
	srv := httptest.NewServer(sl)
	defer srv.Close()

	step("creating the policy (Observe) and %d mailboxes over %d domains", n, domains)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "smartlead", Namespace: ns},
		StringData: map[string]string{"apiKey": apiKey, "webhookSecret": whSecret}}); err != nil {
		return err
	}
	policy := &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec: bgv1.ProtectionPolicySpec{Mode: bgv1.ModeObserve, Smartlead: bgv1.SmartleadSettings{
			BaseURL: srv.URL + "/api/v1", OrganizationID: org,
			APIKeySecretRef:  &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"},
			WebhookSecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "webhookSecret"}},
			Recovery: bgv1.RecoveryRules{Cooldown: metav1.Duration{Duration: time.Hour}, MaxCooldown: metav1.Duration{Duration: time.Hour}}}}
	if err := c.Create(ctx, policy); err != nil {
		return err
	}
	// One status with a full history: the ledger remembers MaxEventIDs events, the window 100 sends.
	var seeded bgv1.MailboxStatus
	for i := range tally.MaxEventIDs + 40 {
		tally.Apply(&seeded, tally.Event{ID: fmt.Sprintf("seed-%d", i), Kind: tally.Send, At: time.Now()}, false)
	}
	tally.Refresh(&seeded, 100)
	seeded.Health = bgv1.HealthHealthy
	emails := make([]string, n)
	ids := make([]int64, n)
	for i := range n {
		emails[i] = fmt.Sprintf("box%d@d%d.fleet.example", i, i%domains)
	}
	for i := range targets {
		ids[i] = sl.AddAccount(emails[i])
	}
	start := time.Now()
	if err := parallel(32, n, func(i int) error {
		mb := &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("box%d", i), Namespace: ns},
			Spec: bgv1.MailboxSpec{Email: emails[i]}}
		if ids[i] != 0 {
			mb.Spec.SmartleadAccountID = &ids[i]
		}
		if err := c.Create(ctx, mb); err != nil {
			return err
		}
		mb.Status = *seeded.DeepCopy()
		return c.Status().Update(ctx, mb)
	}); err != nil {
		return err
	}
	writes := time.Since(start)
	step("created and seeded %d mailboxes in %s (%.0f writes/s: the raw ceiling, two writes each)", n, writes.Round(time.Millisecond),
		float64(2*n)/writes.Seconds())

	// Watch the mailboxes (one watch, not repeated lists of the fleet, which would load the API server
	// more than the manager does) and count those whose Ready condition names the new mode.
	informers, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
	if err != nil {
		return err
	}
	inf, err := informers.GetInformer(ctx, &bgv1.Mailbox{})
	if err != nil {
		return err
	}
	// The mode each mailbox's conditions show (modeShown), and how many show each.
	var modesMu sync.Mutex
	modeOf, inMode := map[string]string{}, map[string]int{}
	seenCrossing := map[string]time.Time{}
	note := func(obj any) {
		mb, ok := obj.(*bgv1.Mailbox)
		if !ok {
			return
		}
		mode := modeShown(mb)
		modesMu.Lock()
		if mb.Status.Bounced >= 5 && seenCrossing[mb.Name].IsZero() {
			seenCrossing[mb.Name] = time.Now() // when a watch of this API server shows the crossing bounce
		}
		if old, ok := modeOf[mb.Name]; !ok || old != mode {
			if ok {
				inMode[old]--
			}
			modeOf[mb.Name] = mode
			inMode[mode]++
		}
		modesMu.Unlock()
	}
	all := func(mode bgv1.Mode) func() (bool, error) {
		return func() (bool, error) {
			modesMu.Lock()
			defer modesMu.Unlock()
			return inMode[modeName(mode)] == n, nil
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: note, UpdateFunc: func(_, o any) { note(o) }}); err != nil {
		return err
	}
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() { _ = informers.Start(cctx) }()
	informers.WaitForCacheSync(cctx)

	step("building and starting the manager as its own process")
	dir, err := os.MkdirTemp("", "fleetscale-")
	if err != nil {
		return err
	}
	keep := false // the manager's log stays for a look when something went wrong
	defer func() {
		if keep {
			step("the manager's log is kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = testenv.RepoRoot(), os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}
	user, err := env.AddUser(envtest.User{Name: "fleetscale", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		return err
	}
	receiver := freeAddr()
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return err
	}
	args := []string{"--metrics-bind-address=0", "--health-probe-bind-address=0", "--receiver-bind-address=" + receiver}
	pprofAddr, metricsAddr := freeAddr(), freeAddr()
	if profiling {
		keep = true
		args = append(args, "--pprof-bind-address="+pprofAddr, "--metrics-bind-address="+metricsAddr, "--metrics-secure=false")
	}
	mgr := exec.Command(bin, append(args, extraArgs...)...)
	mgr.Env = append(append(os.Environ(), "KUBECONFIG="+kcPath), extraEnv...)
	mgr.Stdout, mgr.Stderr = logFile, logFile
	t0 := time.Now()
	if err := mgr.Start(); err != nil {
		return err
	}
	defer func() { _ = mgr.Process.Kill(); _, _ = mgr.Process.Wait() }()

	perDomain := map[string]int32{}
	for _, e := range emails {
		perDomain[e[strings.IndexByte(e, '@')+1:]]++
	}
	if err := waitFor(30*time.Minute, func() (bool, error) {
		var p bgv1.ProtectionPolicy
		if err := c.Get(ctx, client.ObjectKeyFromObject(policy), &p); err != nil {
			return false, err
		}
		if p.Status.Mailboxes != int32(n) {
			return false, nil
		}
		var ds bgv1.DomainList
		if err := c.List(ctx, &ds, client.InNamespace(ns)); err != nil {
			return false, err
		}
		done := 0
		for _, d := range ds.Items {
			if d.Status.Mailboxes == perDomain[d.Name] && d.Status.Health != "" {
				done++
			}
		}
		return done == len(perDomain), nil
	}); err != nil {
		return err
	}
	aggregated := time.Since(t0)
	step("every Domain aggregated and the policy counted %d mailboxes %s after the manager started", n, aggregated.Round(time.Millisecond))
	if err := waitFor(30*time.Minute, all(bgv1.ModeObserve)); err != nil {
		return err
	}
	step("every mailbox reconciled once %s after the manager started", time.Since(t0).Round(time.Millisecond))
	rest := peakRSS(mgr.Process.Pid, 15*time.Second)
	step("manager RSS at rest (peak of 15 s): %.1f MiB", rest)
	if profiling {
		fetch("http://"+pprofAddr+"/debug/pprof/heap", filepath.Join(dir, "heap-at-rest.pb.gz"))
	}

	ingested := 0.0
	if lastPhase != "rest" && ingestDuration > 0 {
		ingested, err = ingest(receiver, emails, targets, ingestDuration)
		if err != nil {
			return err
		}
		step("ingestion: %.0f events/s recorded by 32 concurrent senders over %d mailboxes (%.0f%% of the raw ceiling)",
			ingested, n-targets, 100*ingested/(float64(2*n)/writes.Seconds()))
	}
	if lastPhase == "rest" || lastPhase == "ingest" {
		fmt.Printf("\n| mailboxes | domains | raw writes/s | start → all Domains aggregated | RSS at rest (peak) | events/s recorded |\n|---:|---:|---:|---:|---:|---:|\n")
		fmt.Printf("| %d | %d | %.0f | %s | %.1f MiB | %.0f |\n", n, domains, float64(2*n)/writes.Seconds(), aggregated.Round(100*time.Millisecond), rest, ingested)
		return nil
	}

	step("mode change Observe → Suggest")
	t1 := time.Now()
	if err := setMode(ctx, c, bgv1.ModeSuggest); err != nil {
		return err
	}
	if err := waitFor(30*time.Minute, all(bgv1.ModeSuggest)); err != nil {
		return err
	}
	modeChange := time.Since(t1)
	step("the mode change reached all %d mailboxes in %s", n, modeChange.Round(time.Millisecond))
	if lastPhase == "mode" {
		return nil
	}

	step("Enforce; background load of %.0f webhooks/s; %d mailboxes driven over the threshold while the change spreads", loadRate, targets)
	if err := setMode(ctx, c, bgv1.ModeEnforce); err != nil {
		return err
	}
	// Detection is measured while the change to Enforce is still reaching the fleet: its reconciles are
	// queued at low priority, so a threshold crossing does not wait behind them.
	t2 := time.Now()
	stop := make(chan struct{})
	var loadSent, loadFailed atomic.Int64
	var loadWG sync.WaitGroup
	loadWG.Go(func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / loadRate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			sender := emails[targets+i%(n-targets)]
			go func() {
				if code, err := post(receiver, event(sender, "load", i, false)); err != nil || code != http.StatusOK {
					loadFailed.Add(1)
				}
				loadSent.Add(1)
			}()
		}
	})
	var detections []time.Duration
	var missed []string
	for k := range targets {
		for b := range 4 {
			if code, err := deliver(receiver, event(emails[k], "pre", k*10+b, true)); err != nil || code != http.StatusOK {
				return errors.Join(fmt.Errorf("bounce %d of %s: answered %d", b, emails[k], code), err)
			}
		}
		sent := time.Now()
		if code, err := deliver(receiver, event(emails[k], "cross", k, true)); err != nil || code != http.StatusOK {
			return errors.Join(fmt.Errorf("threshold bounce of %s: answered %d", emails[k], code), err)
		}
		var at time.Time
		if err := waitFor(time.Minute, func() (bool, error) {
			for _, call := range sl.Calls() {
				if call.Path == fmt.Sprintf("/email-accounts/suspend/%d", ids[k]) && call.Code == http.StatusOK {
					at = call.At
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			keep = true
			missed = append(missed, emails[k])
			modesMu.Lock()
			seenAt := seenCrossing[fmt.Sprintf("box%d", k)]
			modesMu.Unlock()
			step("no suspend of %s within a minute; this tool's own watch showed its crossing bounce %s after it was sent",
				emails[k], seenAt.Sub(sent).Round(time.Millisecond))
			if profiling {
				explainMiss(ctx, c, sl, fmt.Sprintf("box%d", k), sent, dir, pprofAddr, metricsAddr)
			}
			continue
		}
		detections = append(detections, at.Sub(sent))
	}
	loaded := peakRSS(mgr.Process.Pid, 5*time.Second)
	close(stop)
	loadWG.Wait()
	if err := waitFor(30*time.Minute, all(bgv1.ModeEnforce)); err != nil {
		return err
	}
	step("Enforce reached all %d mailboxes %s after the change (the detections above ran meanwhile)", n, time.Since(t2).Round(time.Millisecond))
	if len(missed) > 0 {
		step("NOT DETECTED within a minute: %d of %d (%v)", len(missed), targets, missed)
	}
	if len(detections) == 0 {
		return fmt.Errorf("no detection at all")
	}
	slices.Sort(detections)
	p50, p99 := detections[len(detections)/2], detections[min(len(detections)-1, len(detections)*99/100)]
	step("detection under load (%d background webhooks, %d failed): p50 %s, p99 %s (of %d)", loadSent.Load(), loadFailed.Load(),
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), len(detections))
	step("manager RSS under the load (peak of 5 s): %.1f MiB", loaded)

	fmt.Printf("\n| mailboxes | domains | raw writes/s | start → all Domains aggregated | RSS at rest (peak) | RSS under load (peak) | mode change → all mailboxes | detection p50 / p99 under %.0f webhooks/s |\n", loadRate)
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %d | %d | %.0f | %s | %.1f MiB | %.1f MiB | %s | %s / %s |\n", n, domains, float64(2*n)/writes.Seconds(),
		aggregated.Round(100*time.Millisecond), rest, loaded, modeChange.Round(100*time.Millisecond),
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond))
	return nil
}

// ingest posts distinct send events from 32 concurrent senders, each to the next mailbox of the fleet
// (not the detection targets), for d, and returns the events recorded per second.
func ingest(receiver string, emails []string, skip int, d time.Duration) (float64, error) {
	var recorded, failed, next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Since(start) < d {
				i := int(next.Add(1))
				sender := emails[skip+i%(len(emails)-skip)]
				code, err := deliver(receiver, event(sender, "ingest", i, false))
				if err != nil || code != http.StatusOK {
					failed.Add(1)
					continue
				}
				recorded.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 0, fmt.Errorf("ingestion: %d events not accepted", failed.Load())
	}
	return float64(recorded.Load()) / time.Since(start).Seconds(), nil
}

func setMode(ctx context.Context, c client.Client, mode bgv1.Mode) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"mode":%q}}`, mode))
	return c.Patch(ctx, &bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}},
		client.RawPatch("application/merge-patch+json", patch))
}

// modeShown is what a mailbox's conditions show of its policy's mode: "" before its first reconcile,
// "Suggest" with a PauseRecommended condition (Suggest alone sets one), else "Observe or Enforce" (a
// healthy mailbox's conditions are the same in both, so that a change between them writes nothing).
func modeShown(mb *bgv1.Mailbox) string {
	switch {
	case findCondition(mb.Status.Conditions, bgv1.ConditionReady) == nil:
		return ""
	case findCondition(mb.Status.Conditions, bgv1.ConditionPauseRecommended) != nil:
		return string(bgv1.ModeSuggest)
	}
	return modeName(bgv1.ModeObserve)
}

// modeName is how modeShown names mode.
func modeName(mode bgv1.Mode) string {
	if mode == bgv1.ModeSuggest {
		return string(mode)
	}
	return "Observe or Enforce"
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// event is a flat-shape webhook with a real-looking message id and SMTP text.
func event(sender, kind string, seq int, bounce bool) []byte {
	typ, extra := "EMAIL_SENT", ""
	if bounce {
		typ, extra = "EMAIL_BOUNCE", `,"bounce_message":"550 5.1.1 <lead@example.org>: Recipient address rejected: User unknown in virtual mailbox table"`
	}
	return []byte(fmt.Sprintf(`{"event_type":%q,"from_email":%q,"to_email":"lead%d@example.org","campaign_id":7,`+
		`"sent_message":{"message_id":"<CAF%s%d.%d@mail.gmail.com>"},"event_timestamp":%q%s}`,
		typ, sender, seq, kind, seq, time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339Nano), extra))
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// deliver posts until the event is acknowledged or 30 s have passed, waiting a second after a 503 (its
// Retry-After), as Smartlead retries.
func deliver(addr string, body []byte) (int, error) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		code, err := post(addr, body)
		if (err == nil && code != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return code, err
		}
	}
}

func post(addr string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+webhookreceiver.WebhookPath, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Organization-Id", org)
	req.Header.Set("X-Smartlead-Signature", webhookreceiver.Sign(body, whSecret))
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// fetch saves what url answers to path.
func fetch(url, path string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		step("fetching %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		step("writing %s: %v", path, err)
	}
}

// explainMiss prints what the manager and the stand-in show while a detection is missed: the mailbox's
// status, the Smartlead calls since the crossing, the queue metrics, and keeps a goroutine dump.
func explainMiss(ctx context.Context, c client.Client, sl *standin.Server, name string, sent time.Time, dir, pprofAddr, metricsAddr string) {
	var mb bgv1.Mailbox
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &mb); err == nil {
		step("  %s: health %s, bounced %d, smartlead %+v", name, mb.Status.Health, mb.Status.Bounced, mb.Status.Smartlead)
		for _, cond := range mb.Status.Conditions {
			step("  condition %s=%s %s: %s (%s ago)", cond.Type, cond.Status, cond.Reason, cond.Message, time.Since(cond.LastTransitionTime.Time).Round(time.Second))
		}
	}
	byPath := map[string]int{}
	for _, call := range sl.Calls() {
		if call.At.After(sent) {
			p := call.Path
			if i := strings.LastIndexByte(p, '/'); i > 0 {
				if _, err := strconv.Atoi(p[i+1:]); err == nil {
					p = p[:i] + "/N"
				}
			}
			byPath[fmt.Sprintf("%s %s %d", call.Method, p, call.Code)]++
		}
	}
	step("  Smartlead calls since the crossing: %v", byPath)
	fetch("http://"+pprofAddr+"/debug/pprof/goroutine?debug=2", filepath.Join(dir, "goroutines-at-miss-"+name+".txt"))
	fetch("http://"+metricsAddr+"/metrics", filepath.Join(dir, "metrics-at-miss-"+name+".txt"))
	if data, err := os.ReadFile(filepath.Join(dir, "metrics-at-miss-"+name+".txt")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "workqueue_depth") || strings.HasPrefix(line, "bounceguard_") && !strings.Contains(line, "_bucket") {
				step("  %s", line)
			}
		}
	}
}

// peakRSS samples the process's resident memory every 250 ms for d and returns the highest.
func peakRSS(pid int, d time.Duration) float64 {
	peak := 0.0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		peak = max(peak, rss(pid))
	}
	return peak
}

// rss is the process's resident memory in MiB, from /proc.
func rss(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for last := time.Now(); ; {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		if time.Since(last) > 20*time.Second {
			step("still waiting ...")
			last = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func parallel(workers, n int, fn func(int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if (i+1)%5000 == 0 {
					step("%d mailboxes written", i+1)
				}
			}
		})
	}
	wg.Wait()
	return first
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
