package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// A call over a milvus-lb.io/rate-limits limit gets the reply Milvus sends over its quota,
// so milvus_lb_requests_total counts it as milvus_code ServiceRateLimit, as it counts a
// call Milvus itself refused. This counter tells them apart: it counts only the calls
// milvus-lb refused, by the limit that refused them. Labels are bounded by the
// configuration (Ingresses and the names of their limits) and the method table.
func newRateLimited() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "milvus_lb", Name: "rate_limited_total",
		Help: "Calls refused by a milvus-lb.io/rate-limits limit and answered by milvus-lb with Milvus's rate-limit reply, " +
			"by Ingress (namespace/name), limit (its name) and Milvus method. Calls Milvus itself rate-limited are not counted here.",
	}, []string{"ingress", "limit", "method"})
}

// observeRateLimit counts a call one of milvus-lb's rate limits refused.
func (m *Metrics) observeRateLimit(r *call.Record) {
	if r.RateLimit != "" {
		m.rateLimited.WithLabelValues(r.Ingress, r.RateLimit, r.Method).Inc()
	}
}
