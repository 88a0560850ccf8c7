package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/listener"
)

var tlsFailuresDesc = prometheus.NewDesc("milvus_lb_tls_handshake_failures_total",
	"TLS handshakes with clients that failed, by reason: not_tls (plaintext on a TLS port), protocol_version, "+
		"no_shared_cipher, no_application_protocol, unknown_server_name (no certificate covers the client's SNI) and "+
		"no_server_name (no SNI, and no certificate covers the address dialled): both counted also when the "+
		"handshake goes on with the default certificate, which clients that check names then reject; "+
		"certificate_rejected (the client refused the certificate), client_certificate (mutual TLS), timeout, "+
		"client_closed (before its hello), other.",
	[]string{"reason"}, nil)

// tlsCollector exports ConnStats.TLSHandshakeFailures; ConnCollector includes it. Every
// reason is exported from the start, at 0 until it happens, so a rate() sees the first.
type tlsCollector struct{ stats func() listener.ConnStats }

func (tlsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tlsFailuresDesc }

func (c tlsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.stats().TLSHandshakeFailures
	for _, reason := range listener.HandshakeFailureReasons {
		ch <- prometheus.MustNewConstMetric(tlsFailuresDesc, prometheus.CounterValue, float64(counts[reason]), reason)
	}
}

// collectorSet is several collectors registered as one.
type collectorSet []prometheus.Collector

func (cs collectorSet) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectorSet) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}
