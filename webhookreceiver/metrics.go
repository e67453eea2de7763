package webhookreceiver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_webhook_events_total",
		Help: "Smartlead webhook events received, by event type (send, bounce, soft_bounce, ignored, unknown) and result.",
	}, []string{"type", "result"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bounceguard_webhook_request_duration_seconds",
		Help:    "Time from receiving a webhook to answering it, by HTTP status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"code"})
	statusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bounceguard_receiver_status_writes_total",
		Help: "Mailbox status writes made by the receiver, by result (ok, conflict, error).",
	}, []string{"result"})
	batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bounceguard_receiver_batch_events",
		Help:    "Events carried by one successful Mailbox status write.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	requestsShed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bounceguard_receiver_requests_shed_total",
		Help: "Requests answered 503 at once because --receiver-max-in-flight requests were being served, or their body " +
			"would have taken the bodies buffered at once beyond --receiver-max-buffer.",
	})
	bufferedBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bounceguard_receiver_buffered_bytes",
		Help: "Bytes reserved for request bodies being read or judged now (bounded by --receiver-max-buffer).",
	})
)

func init() {
	metrics.Registry.MustRegister(eventsTotal, requestDuration, statusWrites, batchSize, requestsShed, bufferedBytes)
}
