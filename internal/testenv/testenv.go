// Package testenv starts a real API server (envtest) with bounceguard's CRDs installed, for tests.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// Env is a running envtest control plane with bounceguard's CRDs installed.
type Env struct {
	*envtest.Environment
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a direct (uncached) client with bounceguard's types registered.
	Client client.Client
	// Scheme holds the Kubernetes and bounceguard types.
	Scheme *kruntime.Scheme
}

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NewScheme returns a scheme with the Kubernetes and bounceguard types.
func NewScheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := bgv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start starts the control plane, installs the CRDs from config/crd/bases and waits until objects of
// every kind can be created (the API server holds back creates for a moment after a CRD is established).
func Start() (*Env, error) { return StartWith() }

// StartWith is Start with more CRDs installed: files or directories of CRD manifests.
func StartWith(crdPaths ...string) (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: use `make test` or `make dev`, which build the envtest binaries and set it")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     append([]string{filepath.Join(RepoRoot(), "config", "crd", "bases")}, crdPaths...),
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	// Tests create many objects quickly; the default client-side limits would throttle them.
	cfg.QPS, cfg.Burst = 1000, 2000
	s := NewScheme()
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	if err := waitCreatable(c); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: s}, nil
}

// waitCreatable dry-run creates one object of each kind until the API server accepts them all.
func waitCreatable(c client.Client) error {
	probes := []client.Object{
		&bgv1.ProtectionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"}},
		&bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
			Spec: bgv1.MailboxSpec{Email: "probe@example.com"}},
		&bgv1.Domain{ObjectMeta: metav1.ObjectMeta{Name: "example.com", Namespace: "default"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range probes {
		for {
			err := c.Create(ctx, p.DeepCopyObject().(client.Object), client.DryRunAll)
			if err == nil {
				break
			}
			if !meta.IsNoMatchError(err) && ctx.Err() == nil && !isNotYetServed(err) {
				return fmt.Errorf("probing %T: %w", p, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("CRDs not served after 30s: %w", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// NewManager returns a controller-runtime manager for this control plane with metrics and probes off and
// the cache options given (bounceguard's: the Options.CacheOptions of internal/manager, which this
// package does not import). Several may run in one process (controller names are not required to be unique).
func (e *Env) NewManager(cacheOpts cache.Options) (ctrl.Manager, error) {
	return e.NewManagerWith(e.Config, cacheOpts)
}

// ManagerUser is the user the manager runs as in a cluster (config/default: namespace bounceguard-system,
// service account bounceguard-controller-manager).
const ManagerUser = "system:serviceaccount:bounceguard-system:bounceguard-controller-manager"

// AsManager returns a config that acts as ManagerUser, holding exactly the rights that the generated
// ClusterRole (config/rbac/role.yaml) grants it, so that tests also prove the role is enough.
func (e *Env) AsManager(ctx context.Context) (*rest.Config, error) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		return nil, fmt.Errorf("reading config/rbac/role.yaml: %w", err)
	}
	role.Name = "bounceguard-test-manager-role"
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bounceguard-test-manager"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ManagerUser}}}
	for _, obj := range []client.Object{&role, binding} {
		if err := e.Client.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %T: %w", obj, err)
		}
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: ManagerUser}
	return cfg, nil
}

// NewReplica returns one of several leader-elected manager replicas: they elect their leader on the
// lease leaseID in namespace default, with the cache options given (bounceguard's, which this package
// cannot build), a lease of leaseDuration and short renewals, so that a failover takes seconds.
func (e *Env) NewReplica(cacheOpts cache.Options, leaseID string, leaseDuration time.Duration) (ctrl.Manager, error) {
	return ctrl.NewManager(e.Config, ctrl.Options{
		Cache:                   cacheOpts,
		Scheme:                  e.Scheme,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		Controller:              config.Controller{SkipNameValidation: ptr.To(true)},
		LeaderElection:          true,
		LeaderElectionID:        leaseID,
		LeaderElectionNamespace: "default",
		LeaseDuration:           ptr.To(leaseDuration),
		RenewDeadline:           ptr.To(leaseDuration * 2 / 3),
		RetryPeriod:             ptr.To(leaseDuration / 8),
	})
}

// NewManagerWith is NewManager acting with cfg (e.g. AsManager's).
func (e *Env) NewManagerWith(cfg *rest.Config, cacheOpts cache.Options) (ctrl.Manager, error) {
	return ctrl.NewManager(cfg, ctrl.Options{
		Cache:                  cacheOpts,
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
}
