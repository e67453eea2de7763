// Command bounceguard runs the bounceguard manager: the controllers for ProtectionPolicy, Mailbox and
// Domain, and — on every replica — the Smartlead webhook receiver and the execution gate.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/manager"
	"github.com/bounceguard/bounceguard/internal/memlimit"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(bgv1.AddToScheme(scheme))
}

func main() {
	var opts manager.Options
	var metricsAddr, probeAddr, pprofAddr, leaderNamespace, leaderID string
	var secureMetrics, enableHTTP2, leaderElect bool
	var apiQPS, memoryLimitRatio float64
	var apiBurst int
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to (:8443 serves HTTPS, :8080 plain HTTP with --metrics-secure=false, 0 disables it).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"Address a net/http/pprof endpoint binds to, for heap and goroutine profiles (e.g. 127.0.0.1:6060); default: off.")
	flag.BoolVar(&leaderElect, "leader-elect", false,
		"Elect a leader so that only one replica runs the controllers; every replica serves the receiver.")
	flag.StringVar(&leaderNamespace, "leader-election-namespace", "",
		"Namespace of the leader-election lease; default: the pod's namespace in a cluster, else \"default\".")
	flag.StringVar(&leaderID, "leader-election-id", "",
		"Name of the leader-election lease; default: "+manager.DefaultLeaderElectionID+", or one per --watch-label-selector shard.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, guarded by Kubernetes authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset and Stream Cancellation CVEs).")
	flag.Float64Var(&apiQPS, "kube-api-qps", 500, "Requests per second the manager may send to the API server (the receiver writes status per event batch).")
	flag.IntVar(&apiBurst, "kube-api-burst", 1000, "Burst of requests the manager may send to the API server.")
	flag.Float64Var(&memoryLimitRatio, "memory-limit-ratio", 0.9,
		"Unless GOMEMLIMIT is set, the Go runtime's soft memory limit as a share of the container's memory limit (0: none).")
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	if os.Getenv("GOMEMLIMIT") == "" {
		if limit, ok := memlimit.FromCgroup(memoryLimitRatio, nil); ok {
			debug.SetMemoryLimit(limit)
			log.Info("Go memory limit set from the container's", "bytes", limit, "ratio", memoryLimitRatio)
		}
	}
	if err := opts.Validate(); err != nil {
		log.Error(err, "invalid flags")
		os.Exit(2)
	}
	if leaderID == "" {
		leaderID = opts.LeaderElectionID()
	}
	if leaderNamespace == "" {
		leaderNamespace = manager.PodNamespace()
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(apiQPS), apiBurst
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Cache:                   opts.CacheOptions(),
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        leaderID,
		LeaderElectionNamespace: leaderNamespace,
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	if err := manager.Setup(mgr, opts); err != nil {
		log.Error(err, "unable to set up bounceguard")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}

	log.Info("starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}
