package controllers

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

var (
	smartleadCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_smartlead_calls_total",
		Help: "Requests made to the Smartlead API, by operation and HTTP status code (0: no answer).",
	}, []string{"operation", "code"})
	timeToPause = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bounceguard_time_to_pause_seconds",
		Help:    "Time from the webhook event that crossed a mailbox's pause threshold (when its write was judged Paused: status.pausedAt) to the successful pause in Smartlead.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	})
	statusPatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_reconciler_status_patches_total",
		Help: "Status patches written by the reconcilers, by kind (a reconcile that changes nothing writes none).",
	}, []string{"kind"})
	mailboxesByHealth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bounceguard_mailboxes",
		Help: "Mailboxes governed by each ProtectionPolicy, by health.",
	}, []string{"namespace", "policy", "health"})
	domainHealth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bounceguard_domain_health",
		Help: "1 for each Domain's current health (Healthy, Warning, Paused, Recovering), 0 for the others.",
	}, []string{"namespace", "domain", "health"})
	syncFindingsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bounceguard_account_sync_findings",
		Help: "What each policy's last account sync found, by finding: drifted (paused by bounceguard, sending in Smartlead), unmonitored (coverage gap), missing (account gone).",
	}, []string{"namespace", "policy", "finding"})
	syncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_account_syncs_total",
		Help: "Account syncs, by result (ok, failed).",
	}, []string{"result"})
)

// healths are the values of a health label.
var healths = []bgv1.Health{bgv1.HealthHealthy, bgv1.HealthWarning, bgv1.HealthPaused, bgv1.HealthRecovering}

// setDomainHealth exports a domain's health; an empty health (the domain is gone) removes its series.
func setDomainHealth(namespace, domain string, health bgv1.Health) {
	if health == "" {
		domainHealth.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "domain": domain})
		return
	}
	for _, h := range healths {
		v := 0.0
		if h == health {
			v = 1
		}
		domainHealth.WithLabelValues(namespace, domain, string(h)).Set(v)
	}
}

func init() {
	metrics.Registry.MustRegister(smartleadCalls, timeToPause, mailboxesByHealth, domainHealth, statusPatches, syncFindingsGauge, syncs)
}

func observeSmartleadCall(op string, code int) {
	smartleadCalls.WithLabelValues(op, strconv.Itoa(code)).Inc()
}
