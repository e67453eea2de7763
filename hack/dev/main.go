// Command dev runs bounceguard locally on an embedded control plane: it starts envtest's kube-apiserver
// and etcd, installs the CRDs, applies config/samples, starts the manager in-process and prints the
// kubeconfig path and the webhook URL. Ctrl-C stops everything. Run it with `make dev`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

func main() {
	var opts manager.Options
	stateDir := flag.String("state-dir", filepath.Join(os.TempDir(), "bounceguard-dev"), "Where the kubeconfig is written.")
	samples := flag.String("samples", filepath.Join(testenv.RepoRoot(), "config", "samples"), "Directory of manifests applied at start ('' for none).")
	standinAddr := flag.String("smartlead-standin-address", "127.0.0.1:8090", "Where the stand-in Smartlead API listens; every policy's baseURL is pointed at it ('' to leave policies alone).")
	standinKey := flag.String("smartlead-standin-api-key", "replace-with-your-smartlead-api-key", "The API key the stand-in accepts (the samples' Secret holds this one).")
	sinkAddr := flag.String("slack-sink-address", "127.0.0.1:8091", "Where a local Slack-shaped sink listens and prints the notifications every policy sends it ('' for none).")
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := run(*stateDir, *samples, *standinAddr, *standinKey, *sinkAddr, opts); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(stateDir, samples, standinAddr, standinKey, sinkAddr string, opts manager.Options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Println("starting the embedded control plane (kube-apiserver + etcd) ...")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the control plane ...")
		_ = env.Stop()
	}()

	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	user, err := env.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the dev user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(stateDir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}

	if samples != "" {
		if err := applyDir(ctx, env.Client, samples); err != nil {
			return fmt.Errorf("applying %s: %w", samples, err)
		}
	}

	standinURL := "(not started)"
	if standinAddr != "" {
		if standinURL, err = startStandin(ctx, env.Client, standinAddr, standinKey); err != nil {
			return fmt.Errorf("starting the stand-in Smartlead: %w", err)
		}
	}

	sinkURL := "(not started)"
	if sinkAddr != "" {
		if sinkURL, err = startSlackSink(ctx, env.Client, sinkAddr); err != nil {
			return fmt.Errorf("starting the Slack sink: %w", err)
		}
	}
	go reportSyncs(ctx, env.Client)

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Cache:                  opts.CacheOptions(),
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: ":8080"},
		HealthProbeBindAddress: ":8081",
	})
	if err != nil {
		return err
	}
	if err := manager.Setup(mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}

	fmt.Printf(`
bounceguard is running on an embedded control plane.

  export KUBECONFIG=%s
  kubectl get protectionpolicies,mailboxes,domains -A

  webhook URL:  http://localhost%s/webhooks/smartlead   (x-organization-id: 123e4567-e89b-12d3-a456-426614174000)
  gate:         curl -H 'Authorization: Bearer replace-with-a-long-random-gate-token' \
                  'http://localhost%s/v1/gate?mailbox=alice@acme.com'
  metrics:      http://localhost:8080/metrics
  Smartlead:    %s (stand-in; calls at /_standin/calls, state at /_standin/state)
  Slack:        %s (a local sink: the notifications are printed here)

  account sync: the stand-in has two accounts without a Mailbox; the sync at start creates them
                (kubectl get mailboxes -n acme -l app.kubernetes.io/managed-by=bounceguard).
  drift:        once alice is paused, un-suspend her as a person in Smartlead's UI would, then sync:
                curl -X PATCH localhost%s/_standin/accounts/4711 -d '{"is_suspended":false}'
                kubectl annotate pp -n acme default bounceguard.io/sync="$(date +%%s)" --overwrite

  demo:         go run ./hack/replay   (a signed Smartlead stream: watch alice@acme.com get paused)

Press Ctrl-C to stop.

`, kubeconfigPath, opts.ReceiverBindAddress, opts.ReceiverBindAddress, standinURL, sinkURL, portOf(standinAddr))
	return mgr.Start(ctx)
}

// startStandin serves the stand-in Smartlead API, seeded with an account for every Mailbox in the cluster,
// and points every ProtectionPolicy's baseURL at it. It returns the API's URL.
func startStandin(ctx context.Context, c client.Client, addr, apiKey string) (string, error) {
	sl := standin.New(apiKey, "/api/v1")
	var mailboxes bgv1.MailboxList
	if err := c.List(ctx, &mailboxes); err != nil {
		return "", err
	}
	var seed []string
	for _, mb := range mailboxes.Items {
		entry := mb.Spec.Email
		if mb.Spec.SmartleadAccountID != nil {
			entry += "=" + strconv.FormatInt(*mb.Spec.SmartleadAccountID, 10)
		}
		seed = append(seed, entry)
	}
	// Two accounts the samples have no Mailbox for: the account sync at start creates theirs.
	seed = append(seed, "dana@acme.com", "erin@acme.com")
	if err := sl.Seed(strings.Join(seed, ",")); err != nil {
		return "", err
	}
	base, err := serve(ctx, addr, sl)
	if err != nil {
		return "", err
	}
	url := base + "/api/v1"
	return url, eachPolicy(ctx, c, func(p *bgv1.ProtectionPolicy) error {
		before := p.DeepCopy()
		p.Spec.Smartlead.BaseURL = url
		if err := c.Patch(ctx, p, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("pointing policy %s/%s at the stand-in: %w", p.Namespace, p.Name, err)
		}
		fmt.Printf("  policy %s/%s now calls the stand-in Smartlead at %s\n", p.Namespace, p.Name, url)
		return nil
	})
}

// serve serves handler on addr until ctx ends and returns its base URL.
func serve(ctx context.Context, addr string, handler http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return "http://" + ln.Addr().String(), nil
}

// eachPolicy calls fn with every ProtectionPolicy of the cluster.
func eachPolicy(ctx context.Context, c client.Client, fn func(*bgv1.ProtectionPolicy) error) error {
	var policies bgv1.ProtectionPolicyList
	if err := c.List(ctx, &policies); err != nil {
		return err
	}
	for i := range policies.Items {
		if err := fn(&policies.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

// applyDir creates (or leaves alone, when present) every object of the YAML files directly in dir, in
// file-name order, as `kubectl apply -f dir` would on a fresh cluster.
func applyDir(ctx context.Context, c client.Client, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			obj := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := c.Create(ctx, obj); client.IgnoreAlreadyExists(err) != nil {
				return fmt.Errorf("%s: creating %s %s: %w", f, obj.GetKind(), obj.GetName(), err)
			}
			fmt.Printf("  created %s %s/%s\n", obj.GetKind(), obj.GetNamespace(), obj.GetName())
		}
	}
	return nil
}

// portOf returns ":port" of a host:port address.
func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i:]
	}
	return addr
}

// startSlackSink serves a local stand-in for a Slack incoming webhook that prints each message it gets,
// stores its URL in a Secret of each policy's namespace, and adds it to the notifications of every policy
// that has none. It returns the sink's URL.
func startSlackSink(ctx context.Context, c client.Client, addr string) (string, error) {
	base, err := serve(ctx, addr, http.HandlerFunc(printSlackMessage))
	if err != nil {
		return "", err
	}
	url := base + "/services/dev"
	return url, eachPolicy(ctx, c, func(p *bgv1.ProtectionPolicy) error {
		if len(p.Spec.Notifications) > 0 {
			return nil
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bounceguard-dev-slack", Namespace: p.Namespace},
			StringData: map[string]string{"url": url}}
		if err := c.Create(ctx, secret); client.IgnoreAlreadyExists(err) != nil {
			return err
		}
		before := p.DeepCopy()
		p.Spec.Notifications = []bgv1.NotificationTarget{{Type: bgv1.NotificationSlack,
			URLSecretRef: bgv1.SecretKeySelector{Name: secret.Name, Key: "url"}}}
		if err := c.Patch(ctx, p, client.MergeFrom(before)); err != nil {
			return fmt.Errorf("adding the Slack sink to policy %s/%s: %w", p.Namespace, p.Name, err)
		}
		fmt.Printf("  policy %s/%s now notifies the local Slack sink\n", p.Namespace, p.Name)
		return nil
	})
}

// printSlackMessage prints a Slack incoming-webhook message as Slack would show it, roughly.
func printSlackMessage(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Text     *struct{ Text string }  `json:"text"`
			Elements []struct{ Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		http.Error(w, "not a Slack message", http.StatusBadRequest)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n[slack] %s\n", msg.Text)
	for _, block := range msg.Blocks {
		if block.Text != nil && !strings.HasPrefix(block.Text.Text, "*") {
			for _, l := range strings.Split(block.Text.Text, "\n") {
				fmt.Fprintf(&b, "        %s\n", l)
			}
		}
		for _, e := range block.Elements {
			fmt.Fprintf(&b, "        (%s)\n", e.Text)
		}
	}
	fmt.Print(b.String())
	_, _ = w.Write([]byte("ok"))
}

// reportSyncs prints each completed account sync of every policy, as it is recorded in the policy's status.
func reportSyncs(ctx context.Context, c client.Client) {
	seen := map[string]string{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var policies bgv1.ProtectionPolicyList
		if err := c.List(ctx, &policies); err != nil {
			continue
		}
		for _, p := range policies.Items {
			st := p.Status
			if st.LastSyncTime == nil && st.LastSyncError == "" {
				continue
			}
			line := fmt.Sprintf("account sync of %s/%s: %d Smartlead accounts read", p.Namespace, p.Name, st.Accounts)
			if st.LastSyncError != "" {
				line = fmt.Sprintf("account sync of %s/%s failed: %s", p.Namespace, p.Name, st.LastSyncError)
			}
			key := p.Namespace + "/" + p.Name
			stamp := line
			if st.LastSyncTime != nil {
				stamp += st.LastSyncTime.String()
			}
			if seen[key] != stamp {
				seen[key] = stamp
				fmt.Println("[sync]", line, "(kubectl get events -n", p.Namespace+")")
			}
		}
	}
}
