package controllers

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	smartleadCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_smartlead_calls_total",
		Help: "Requests made to the Smartlead API, by operation and HTTP status code (0: no answer).",
	}, []string{"operation", "code"})
	timeToPause = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bounceguard_time_to_pause_seconds",
		Help:    "Time from the webhook event that crossed a mailbox's pause threshold (its lastEventAt) to the successful pause in Smartlead.",
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
)

func init() {
	metrics.Registry.MustRegister(smartleadCalls, timeToPause, mailboxesByHealth, statusPatches)
}

func observeSmartleadCall(op string, code int) {
	smartleadCalls.WithLabelValues(op, strconv.Itoa(code)).Inc()
}
