package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// notifications counts messages by target type and result: delivered, retried (one per retry), failed
// (given up on after every attempt) and dropped (notices over a target's bound).
var notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "bounceguard_notifications_total",
	Help: "Notification messages by target type and result (delivered, retried, failed, dropped).",
}, []string{"type", "result"})

func init() {
	metrics.Registry.MustRegister(notifications)
}
