// Command dev runs bounceguard locally on an embedded control plane: it starts envtest's kube-apiserver
// and etcd, installs the CRDs, applies config/samples, starts the manager in-process and prints the
// kubeconfig path and the webhook URL. Ctrl-C stops everything. Run it with `make dev`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bounceguard/bounceguard/controllers"
	"github.com/bounceguard/bounceguard/internal/testenv"
)

func main() {
	var opts controllers.Options
	stateDir := flag.String("state-dir", filepath.Join(os.TempDir(), "bounceguard-dev"), "Where the kubeconfig is written.")
	samples := flag.String("samples", filepath.Join(testenv.RepoRoot(), "config", "samples"), "Directory of manifests applied at start ('' for none).")
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if err := run(*stateDir, *samples, opts); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(stateDir, samples string, opts controllers.Options) error {
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

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: ":8080"},
		HealthProbeBindAddress: ":8081",
	})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}

	fmt.Printf(`
bounceguard is running on an embedded control plane.

  export KUBECONFIG=%s
  kubectl get protectionpolicies,mailboxes,domains -A

  webhook URL:  http://localhost%s/webhooks/smartlead
  metrics:      http://localhost:8080/metrics

Press Ctrl-C to stop.

`, kubeconfigPath, opts.ReceiverBindAddress)
	return mgr.Start(ctx)
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
