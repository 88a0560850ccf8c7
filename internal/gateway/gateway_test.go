package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

type fakeListeners struct{ err error }

func (f *fakeListeners) Reconcile([]config.Listener) error { return f.err }

func model(port int, eps ...string) *config.Model {
	b := &config.Backend{Key: "ns/svc:80", Service: "ns/svc", Port: "80", Algorithm: config.RoundRobin,
		HealthCheck: config.HealthCheck{Kind: config.CheckNone}}
	for _, e := range eps {
		b.Endpoints = append(b.Endpoints, config.Endpoint{Address: e, Ready: true})
	}
	return &config.Model{
		Backends:  map[string]*config.Backend{b.Key: b},
		Listeners: []config.Listener{{Port: port, Protocol: config.HTTP, Routes: []config.Route{{Host: "h", Path: "/", PathType: config.PathPrefix, Backend: b.Key}}}},
	}
}

func TestApplySwapsAndKeepsOldOnFailure(t *testing.T) {
	reg := balancer.NewRegistry()
	ls := &fakeListeners{}
	g := New(reg, ls, nil, nil)
	changes, stop := g.Subscribe()
	defer stop()

	if _, err := g.Apply(context.Background(), model(80, "10.0.0.1:1"), nil); err != nil {
		t.Fatal(err)
	}
	first := g.Current()
	if first.Generation != 1 || first.Listeners[80] == nil || first.Listeners[80].Routes.Match("h", "/x") == nil {
		t.Fatalf("first snapshot: %+v", first)
	}
	select {
	case <-changes:
	default:
		t.Error("no notification after Apply")
	}

	ls.err = errors.New("listen tcp :81: address already in use")
	if _, err := g.Apply(context.Background(), model(81, "10.0.0.2:1"), nil); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply with a port that cannot open: %v", err)
	}
	if g.Current() != first {
		t.Error("a configuration that could not be served replaced the one in force")
	}
	// Endpoint state outlives the snapshot only for addresses still configured.
	ls.err = nil
	if _, err := g.Apply(context.Background(), model(80, "10.0.0.2:1"), nil); err != nil {
		t.Fatal(err)
	}
	if g.Current().Generation != 2 {
		t.Errorf("generation %d, want 2", g.Current().Generation)
	}
	if _, created := reg.Get("10.0.0.1:1"); !created {
		t.Error("state of an endpoint no longer configured was kept")
	}
}

func TestCompileErrors(t *testing.T) {
	reg := balancer.NewRegistry()
	m := model(80)
	m.Listeners = append(m.Listeners, m.Listeners[0])
	if _, err := Compile(m, reg); err == nil || !strings.Contains(err.Error(), "port 80 is declared twice") {
		t.Errorf("duplicate port: %v", err)
	}
	m = model(443)
	m.Listeners[0].Protocol = config.HTTPS
	if _, err := Compile(m, reg); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("HTTPS without certificate: %v", err)
	}
	m.Listeners[0].Certificates = []config.Certificate{{Ref: "arn:x", CertPEM: []byte("junk"), KeyPEM: []byte("junk")}}
	if _, err := Compile(m, reg); err == nil || !strings.Contains(err.Error(), "certificate arn:x") {
		t.Errorf("bad certificate: %v", err)
	}
	ca := certtest.NewCA(t)
	cert, key := ca.Issue(t, "h")
	m.Listeners[0].Certificates = []config.Certificate{{Ref: "arn:x", CertPEM: cert, KeyPEM: key}}
	m.Listeners[0].TLS = config.TLSPolicy{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13,
		CipherSuites: []config.CipherSuite{config.CipherSuite(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)}}
	snap, err := Compile(m, reg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := snap.Listeners[443].TLS; cfg == nil || cfg.MinVersion != tls.VersionTLS12 || cfg.MaxVersion != tls.VersionTLS13 ||
		!slices.Equal(cfg.CipherSuites, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}) ||
		len(cfg.Certificates) != 1 || cfg.NextProtos[0] != "h2" {
		t.Errorf("TLS config %+v", cfg)
	}
	m = model(80)
	m.Listeners[0].Routes[0].Backend = "ns/missing:80"
	if _, err := Compile(m, reg); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Errorf("unknown backend: %v", err)
	}
}

func TestTerminatingEndpointsGetNoNewCalls(t *testing.T) {
	reg := balancer.NewRegistry()
	m := model(80, "10.0.0.1:1", "10.0.0.2:1")
	m.Backends["ns/svc:80"].Endpoints[1].Terminating = true
	snap, err := Compile(m, reg)
	if err != nil {
		t.Fatal(err)
	}
	b := snap.Backends["ns/svc:80"]
	if len(b.Endpoints) != 1 || b.Endpoints[0].Addr != "10.0.0.1:1" {
		t.Fatalf("candidates %v, want only the ready one", b.Endpoints)
	}
	for range 10 {
		if ep := b.Picker.Pick(time.Now().UnixNano()); ep == nil || ep.Addr != "10.0.0.1:1" {
			t.Fatalf("picked %v", ep)
		}
	}
}

func TestWaitCheckedIsBounded(t *testing.T) {
	reg := balancer.NewRegistry()
	m := model(80, "10.0.0.1:1")
	m.Backends["ns/svc:80"].HealthCheck.Kind = config.CheckMilvus // nobody checks it here
	snap, err := Compile(m, reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitChecked(context.Background(), snap, 100*time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v for a verdict that never comes, want about the limit", d)
	}
}

// The snapshot carries each backend's resilience policy with its defaults filled in, and
// what the Ingress set kept: the per-call decision reads it several times a call.
func TestCompileResolvesResilience(t *testing.T) {
	m := model(80, "10.0.0.1:1")
	m.Backends["ns/svc:80"].Resilience.Retry.MaxAttempts = 1
	snap, err := Compile(m, balancer.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := snap.Backends["ns/svc:80"].Policy
	if p.Retry.MaxAttempts != 1 || p.Retry.MaxReplayBytes != config.DefaultMaxReplayBytes ||
		p.Outlier.ConsecutiveFailures != config.DefaultConsecutiveFailures {
		t.Errorf("policy %+v: want max attempts 1 as set, the rest defaults", p)
	}
}
