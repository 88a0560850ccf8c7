package mirror

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics compare a mirror with its primary: the same method's calls, codes and times as
// milvus_lb_requests_total and milvus_lb_request_duration_seconds give for the primary.
// Labels are bounded: backend keys from the configuration, method names from the
// descriptors, gRPC code names.
type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dropped  *prometheus.CounterVec
}

func newMetrics() metrics {
	return metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "milvus_lb", Name: "mirror_requests_total",
			Help: "Copies of calls sent to a mirror backend, by mirror backend, method and the gRPC code it answered (transport_error when it did not).",
		}, []string{"backend", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "milvus_lb", Name: "mirror_request_duration_seconds",
			Help:    "Time a mirror backend took to answer a copy, by mirror backend and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"backend", "method"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "milvus_lb", Name: "mirror_dropped_total",
			Help: "Copies not sent, by mirror backend and reason: queue_full (the mirror is slower than the traffic), no_endpoint, not_kept (the request was larger than the retry buffer).",
		}, []string{"backend", "reason"}),
	}
}

func (m metrics) describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.duration.Describe(ch)
	m.dropped.Describe(ch)
}

func (m metrics) collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.duration.Collect(ch)
	m.dropped.Collect(ch)
}

// codeName is a grpc-status value's code name (OK, Unavailable, ...).
func codeName(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		return "Unknown"
	}
	return codes.Code(n).String()
}
