// Package dataplane assembles milvus-lb's data plane from its parts: the endpoint
// registry, the backend transports, the listener manager (whose handlers and TLS lookup
// read the gateway's current snapshot), the health checker and the gateway that applies
// configuration models to all of them. `milvus-lb serve` and `milvus-lb controller` run
// one; the in-process test harness (internal/testkit/lbtest) builds its own with New too,
// so that what the tests test is what runs.
package dataplane

import (
	"crypto/tls"
	"log/slog"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/health"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/mirror"
	"github.com/milvus-lb/milvus-lb/internal/relay"
	"github.com/milvus-lb/milvus-lb/internal/rest"
)

// Options configure a data plane.
type Options struct {
	Listener listener.Options
	Limits   call.Limits
	Trace    call.StartTrace // nil: no spans (tracing.Tracer.StartTrace when on)
	Log      *slog.Logger
}

// Plane is one data plane. Configuration reaches it through Gateway.Apply.
type Plane struct {
	Registry  *balancer.Registry
	Pool      *relay.Pool      // HTTP/2 connections to backends (gRPC)
	REST      *rest.Transports // HTTP/1.1 (and HTTP/2) round trippers for REST
	Mirror    *mirror.Sender   // copies of mirrored calls (its metrics: a prometheus.Collector)
	Listeners *listener.Manager
	Gateway   *gateway.Gateway

	checker   *health.Checker
	observer  call.Observer
	closeOnce sync.Once
}

// New assembles a data plane; it listens on nothing until a model is applied.
func New(o Options) *Plane {
	p := &Plane{Registry: balancer.NewRegistry(), Pool: relay.NewPool(), REST: rest.NewTransports(), Mirror: mirror.New()}
	p.Listeners = listener.NewManager(o.Listener,
		// Handlers are made when a model opens a port, after New returns: by then the
		// gateway exists and the observer, if any, is set.
		func(port int, isTLS bool) listener.Handler {
			cp := &call.Port{Number: port, TLS: isTLS, Snapshot: p.Gateway.Current, Observer: p.observer, Log: o.Log, Limits: o.Limits, Trace: o.Trace}
			return &relay.Server{Port: cp, Pool: p.Pool, REST: &rest.Handler{Port: cp, Transports: p.REST}, Mirror: p.Mirror}
		},
		func(port int) *tls.Config {
			if l := p.Gateway.Current().Listeners[port]; l != nil {
				return l.TLS
			}
			return nil
		}, o.Log)
	p.checker = health.New(p.Registry, o.Log)
	p.Gateway = gateway.New(p.Registry, p.Listeners, p.checker, o.Log)
	return p
}

// SetObserver sets what receives a record of every finished call (the metrics, which are
// built on the gateway and so after it). It must be called before the first Apply.
func (p *Plane) SetObserver(obs call.Observer) { p.observer = obs }

// Close stops the listeners, waiting up to grace for the calls in flight (they are sent
// GOAWAY first), then the health checks and the idle backend connections. Calls after
// the first do nothing.
func (p *Plane) Close(grace time.Duration) {
	p.closeOnce.Do(func() {
		p.Listeners.Shutdown(grace)
		p.checker.Close()
		p.Pool.Close()
		p.REST.Close()
		p.Mirror.Close()
	})
}
