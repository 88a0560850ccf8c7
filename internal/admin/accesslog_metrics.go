package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
)

var accessLogDroppedDesc = prometheus.NewDesc("milvus_lb_access_log_dropped_total",
	"Access log lines not written, by reason: queue_full (calls came faster than the log is written; "+
		"calls never wait for it), write_error (the file or stream could not be written).",
	[]string{"reason"}, nil)

// AccessLogCollector exports the access log's counters at scrape time (zero when the log
// is off). Register it with Metrics.Registry.
func AccessLogCollector(stats func() accesslog.Stats) prometheus.Collector {
	return accessLogCollector{stats}
}

type accessLogCollector struct{ stats func() accesslog.Stats }

func (accessLogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- accessLogDroppedDesc }

func (c accessLogCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(accessLogDroppedDesc, prometheus.CounterValue, float64(s.Dropped), "queue_full")
	ch <- prometheus.MustNewConstMetric(accessLogDroppedDesc, prometheus.CounterValue, float64(s.WriteFailed), "write_error")
}
