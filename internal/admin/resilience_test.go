package admin

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// gather returns every sample of reg's metrics named in want, keyed name{label values}.
func gather(t *testing.T, reg *prometheus.Registry, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() != n {
				continue
			}
			for _, m := range mf.GetMetric() {
				key := n
				for _, lp := range m.GetLabel() {
					key += "{" + lp.GetValue() + "}"
				}
				got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return got
}

func TestResilienceMetrics(t *testing.T) {
	reg := balancer.NewRegistry()
	gw := gateway.New(reg, nil, nil, slog.New(slog.DiscardHandler))
	const key = "milvus/milvus-demo:19530"
	be := &config.Backend{Key: key, HealthCheck: config.HealthCheck{Kind: config.CheckNone}}
	for _, a := range []string{"10.0.0.1:19530", "10.0.0.2:19530", "10.0.0.3:19530"} {
		be.Endpoints = append(be.Endpoints, config.Endpoint{Address: a, Ready: true})
	}
	snap, err := gw.Apply(context.Background(), &config.Model{Backends: map[string]*config.Backend{key: be}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eps := snap.Backends[key].Endpoints
	balancer.Eject(eps[0], eps, balancer.Ejection{Base: time.Minute, Max: time.Hour, MaxPercent: 50}, time.Now())

	m := NewMetrics(gw, reg)
	m.Ejected(key, eps[0].Addr, call.NotServing, time.Minute)
	m.Overflowed(key, true)
	m.Overflowed(key, true)
	m.Overflowed(key, false)
	m.RetryDenied(key)
	got := gather(t, m.Registry, "milvus_lb_ejections_total", "milvus_lb_ejected_endpoints",
		"milvus_lb_overflows_total", "milvus_lb_retries_denied_total")
	want := map[string]float64{
		"milvus_lb_ejections_total{" + key + "}{not_serving}": 1,
		"milvus_lb_ejected_endpoints{" + key + "}":            1,
		"milvus_lb_overflows_total{" + key + "}{endpoint}":    2,
		"milvus_lb_overflows_total{" + key + "}{backend}":     1,
		"milvus_lb_retries_denied_total{" + key + "}":         1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// The status page says which endpoint is out, and until when.
	st := (&Server{Gateway: gw, Ports: func() []int { return nil }}).snapshotStatus()
	for _, e := range st.Backends[0].Endpoints {
		if out := !e.EjectedUntil.IsZero(); out != (e.Address == eps[0].Addr) {
			t.Errorf("status of %s: ejected until %v", e.Address, e.EjectedUntil)
		}
	}
}
