package admin

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/listener"
)

func TestConnCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ConnCollector(func() listener.ConnStats {
		return listener.ConnStats{Open: 3, Accepted: 10, Rejected: 2, IdleClosed: 1, ResetClosed: 4,
			HTTP2Errors:          map[string]int64{"too_many_early_resets": 5},
			TLSHandshakeFailures: map[string]int64{"not_tls": 6}}
	}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetValue() + "}"
			}
			if m.Gauge != nil {
				got[key] = m.GetGauge().GetValue()
			} else {
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"milvus_lb_client_connections":                           3,
		"milvus_lb_client_connections_total{accepted}":           10,
		"milvus_lb_client_connections_total{rejected}":           2,
		"milvus_lb_client_connections_total{closed_idle}":        1,
		"milvus_lb_client_connections_total{closed_rapid_reset}": 4,
		"milvus_lb_http2_errors_total{too_many_early_resets}":    5,
	}
	// Every handshake failure reason is exported, at 0 until it happens.
	for _, r := range listener.HandshakeFailureReasons {
		want["milvus_lb_tls_handshake_failures_total{"+r+"}"] = 0
	}
	want["milvus_lb_tls_handshake_failures_total{not_tls}"] = 6
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
}
