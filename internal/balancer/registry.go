// Package balancer owns endpoint state and the pickers that choose an endpoint for each
// request. Endpoint state (in-flight count, health, ejection) lives in a Registry keyed by
// address so that it outlives configuration snapshots: a reload that keeps an endpoint keeps
// its counters and its health.
package balancer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is the live state of one backend address. All methods may be called
// concurrently.
type Endpoint struct {
	Addr string

	inflight atomic.Int64
	// healthy is set by the active health checker. A new endpoint starts healthy only when
	// its backend has no active check; otherwise it waits for its first passing check
	// (as an ALB target starts in "initial").
	healthy atomic.Bool
	// checked is set by the first verdict, so a new configuration can wait for it.
	checked atomic.Bool
	// passive is what real calls say of the endpoint: failures, ejection (outlier.go).
	passive passive
	// readySince is when the endpoint last became healthy, for slow start.
	readySince atomic.Int64
	// draining is set when the endpoint left the configuration or is terminating: it gets
	// no new calls but keeps the ones in flight.
	draining atomic.Bool
	// lat is what its recent reads took (latency.go).
	lat latency
}

// Inflight returns the number of calls in flight to the endpoint.
func (e *Endpoint) Inflight() int64 { return e.inflight.Load() }

// Start counts a call; Done, called exactly once for each Start, ends it.
func (e *Endpoint) Start() { e.inflight.Add(1) }

// Done ends a call counted by Start.
func (e *Endpoint) Done() { e.inflight.Add(-1) }

// Healthy reports the active health check's verdict.
func (e *Endpoint) Healthy() bool { return e.healthy.Load() }

// SetHealthy records a health verdict; a transition to healthy restarts slow start.
func (e *Endpoint) SetHealthy(ok bool) {
	defer e.checked.Store(true)
	if ok && !e.healthy.Swap(true) {
		e.readySince.Store(time.Now().UnixNano())
	} else if !ok {
		e.healthy.Store(false)
	}
}

// Checked reports whether a health verdict has been recorded since the endpoint was created.
func (e *Endpoint) Checked() bool { return e.checked.Load() }

// SetDraining marks the endpoint as leaving.
func (e *Endpoint) SetDraining(d bool) { e.draining.Store(d) }

// Draining reports whether the endpoint is leaving (status pages).
func (e *Endpoint) Draining() bool { return e.draining.Load() }

// Available reports whether the endpoint may take a new call at now (unix nanos).
func (e *Endpoint) Available(now int64) bool {
	return e.healthy.Load() && !e.draining.Load() && !e.Ejected(now)
}

// ReadySince returns when the endpoint last became healthy, in unix nanos.
func (e *Endpoint) ReadySince() int64 { return e.readySince.Load() }

// Registry maps addresses to their Endpoint state. Safe for concurrent use.
type Registry struct {
	mu sync.Mutex
	m  map[string]*Endpoint
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: make(map[string]*Endpoint)} }

// Get returns the state for addr, creating it (unhealthy) if it is new; created reports
// whether it was.
func (r *Registry) Get(addr string) (ep *Endpoint, created bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ep = r.m[addr]; ep != nil {
		return ep, false
	}
	ep = &Endpoint{Addr: addr}
	r.m[addr] = ep
	return ep, true
}

// Retain drops the state of every address not in keep whose calls have all ended, so the
// registry does not grow without bound as endpoints come and go. Addresses not in keep
// that still have calls in flight are marked draining and kept.
func (r *Registry) Retain(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, ep := range r.m {
		if keep[addr] {
			continue
		}
		if ep.Inflight() == 0 {
			delete(r.m, addr)
		} else {
			ep.SetDraining(true)
		}
	}
}

// All returns a copy of the current endpoints, for status pages and metrics.
func (r *Registry) All() []*Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Endpoint, 0, len(r.m))
	for _, ep := range r.m {
		out = append(out, ep)
	}
	return out
}
