package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/listener"
)

var (
	connsOpenDesc = prometheus.NewDesc("milvus_lb_client_connections",
		"Client connections open now, over all listener ports.", nil, nil)
	connsTotalDesc = prometheus.NewDesc("milvus_lb_client_connections_total",
		"Client connections by outcome: accepted; rejected (over --max-connections, reset at once); "+
			"closed_idle (--idle-timeout); closed_rapid_reset (most streams reset by the client as they began).",
		[]string{"outcome"}, nil)
	http2ErrorsDesc = prometheus.NewDesc("milvus_lb_http2_errors_total",
		"HTTP/2 protocol errors and defences triggered by clients, by Go's name for them (a small fixed set).",
		[]string{"kind"}, nil)
)

// ConnCollector exports the connection limits' counters (listener.Manager.ConnStats) at
// scrape time. Register it with Metrics.Registry once the listener manager exists.
func ConnCollector(stats func() listener.ConnStats) prometheus.Collector {
	return collectorSet{connCollector{stats}, tlsCollector{stats}}
}

type connCollector struct{ stats func() listener.ConnStats }

func (connCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connsOpenDesc
	ch <- connsTotalDesc
	ch <- http2ErrorsDesc
}

func (c connCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(connsOpenDesc, prometheus.GaugeValue, float64(s.Open))
	for outcome, n := range map[string]int64{
		"accepted": s.Accepted, "rejected": s.Rejected, "closed_idle": s.IdleClosed, "closed_rapid_reset": s.ResetClosed,
	} {
		ch <- prometheus.MustNewConstMetric(connsTotalDesc, prometheus.CounterValue, float64(n), outcome)
	}
	for kind, n := range s.HTTP2Errors {
		ch <- prometheus.MustNewConstMetric(http2ErrorsDesc, prometheus.CounterValue, float64(n), kind)
	}
}
