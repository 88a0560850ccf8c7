package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// resilienceMetrics count what outlier detection, retries and circuit breaking decide
// (call.Events, which Metrics implements through it), and show the endpoints ejected now.
// Labels are bounded: backend keys from the configuration, reasons from call.Reason.
type resilienceMetrics struct {
	ejections   *prometheus.CounterVec
	overflows   *prometheus.CounterVec
	retryDenied *prometheus.CounterVec
}

var ejectedDesc = prometheus.NewDesc("milvus_lb_ejected_endpoints",
	"Endpoints of each backend ejected now by passive outlier detection.", []string{"backend"}, nil)

func newResilienceMetrics(r *prometheus.Registry, gw *gateway.Gateway) resilienceMetrics {
	m := resilienceMetrics{
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "milvus_lb", Name: "ejections_total",
			Help: "Endpoints ejected by passive outlier detection, by backend and the reason of the failures (connect, refused, reset, unavailable, not_serving, timeout).",
		}, []string{"backend", "reason"}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "milvus_lb", Name: "overflows_total",
			Help: "Calls answered at once with UNAVAILABLE because a circuit breaker's limit of calls in flight was reached, by backend and limit (backend or endpoint).",
		}, []string{"backend", "limit"}),
		retryDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "milvus_lb", Name: "retries_denied_total",
			Help: "Calls that could safely have gone to another endpoint but failed, because the backend's retry budget was spent.",
		}, []string{"backend"}),
	}
	r.MustRegister(m.ejections, m.overflows, m.retryDenied, ejectedCollector{gw})
	return m
}

var _ call.Events = (*Metrics)(nil)

// Ejected implements call.Events.
func (m resilienceMetrics) Ejected(backend, _ string, reason call.Reason, _ time.Duration) {
	m.ejections.WithLabelValues(backend, reason.String()).Inc()
}

// Overflowed implements call.Events.
func (m resilienceMetrics) Overflowed(backend string, perEndpoint bool) {
	limit := "backend"
	if perEndpoint {
		limit = "endpoint"
	}
	m.overflows.WithLabelValues(backend, limit).Inc()
}

// RetryDenied implements call.Events.
func (m resilienceMetrics) RetryDenied(backend string) { m.retryDenied.WithLabelValues(backend).Inc() }

// ejectedCollector counts the ejected endpoints of each backend in force at scrape time.
type ejectedCollector struct{ gw *gateway.Gateway }

func (c ejectedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ejectedDesc }

func (c ejectedCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now().UnixNano()
	for key, b := range c.gw.Current().Backends {
		n := 0
		for _, ep := range b.Endpoints {
			if ep.Ejected(now) {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(ejectedDesc, prometheus.GaugeValue, float64(n), key)
	}
}

// ejectedUntil is when an ejected endpoint's ejection time ends, for the status page; the
// zero time when it is not ejected. A time in the past means it waits for a passing
// active check.
func ejectedUntil(ep *balancer.Endpoint) time.Time {
	if !ep.Ejected(time.Now().UnixNano()) {
		return time.Time{}
	}
	return ep.EjectedUntil()
}
