// Package gateway compiles a config.Model into an immutable Snapshot and swaps it in
// atomically. The data path loads the current snapshot once per request and never sees a
// half-applied configuration. A configuration that cannot be served (a certificate that
// does not parse, a port that cannot be bound) is rejected whole and the previous snapshot
// keeps serving.
package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Snapshot is one compiled generation. It is immutable and shared by all requests.
type Snapshot struct {
	Generation uint64
	Applied    time.Time
	Model      *config.Model
	Problems   config.Problems
	Listeners  map[int]*Listener // by port
	Backends   map[string]*Backend
	RateLimits map[string]*ratelimit.Set // by Ingress ns/name; set by Apply
	Caches     map[string]*Cache         // by Ingress ns/name; set by Apply
}

// Listener is the compiled form of one config.Listener.
type Listener struct {
	config.Listener
	// TLS is the server configuration for HTTPS listeners, nil for HTTP. Handshakes take
	// it from the current snapshot, so a rotated certificate reaches new connections
	// without a restart.
	TLS    *tls.Config
	Routes *router.Table[*Backend]
}

// Backend is a target group with its live endpoints and its picker.
type Backend struct {
	*config.Backend
	// Policy is Resilience with its defaults filled in: resolved once per snapshot rather
	// than at each of a call's three or four reads of it.
	Policy    config.Resilience
	Picker    balancer.Picker
	Endpoints []*balancer.Endpoint // ready and not terminating: candidates for new calls
	// Turns counts the stale-tolerant reads shared with the standby by weight.
	Turns atomic.Uint64
	// MirrorTurns counts the calls a mirror takes its percent of.
	MirrorTurns atomic.Uint64
}

// ListenerSet opens and closes the sockets for a set of listeners. Reconcile must open
// every new port before it returns, and fail without side effects on the old ports when a
// port cannot be opened.
type ListenerSet interface {
	Reconcile(ls []config.Listener) error
}

// HealthChecker probes endpoints and records verdicts in the registry. Update starts
// probing new endpoints; the retire it returns stops probing those that left.
type HealthChecker interface {
	Update(backends map[string]*config.Backend) (retire func())
}

// Gateway owns the current snapshot. Apply may be called from one goroutine at a time
// (the source's); Current may be called from any goroutine.
type Gateway struct {
	reg       *balancer.Registry
	listeners ListenerSet
	health    HealthChecker
	log       *slog.Logger

	mu      sync.Mutex // serializes Apply
	gen     uint64
	current atomic.Pointer[Snapshot]
	// subscribers are woken after each successful swap (get ingress -w, status writers).
	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
}

// New returns a gateway with an empty snapshot. listeners and health may be nil (for
// validation and tests).
func New(reg *balancer.Registry, listeners ListenerSet, health HealthChecker, log *slog.Logger) *Gateway {
	g := &Gateway{reg: reg, listeners: listeners, health: health, log: log, subs: map[chan struct{}]struct{}{}}
	g.current.Store(&Snapshot{Model: &config.Model{}, Listeners: map[int]*Listener{}, Backends: map[string]*Backend{}})
	return g
}

// Current returns the snapshot in force.
func (g *Gateway) Current() *Snapshot { return g.current.Load() }

// Apply compiles m and, if it can be served, makes it current. problems are the
// translator's findings, kept with the snapshot for status pages. On error the previous
// snapshot stays current.
func (g *Gateway) Apply(ctx context.Context, m *config.Model, problems config.Problems) (*Snapshot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()

	snap, err := Compile(m, g.reg)
	if err != nil {
		return nil, err
	}
	snap.Problems = problems
	// Limits keep their buckets across generations (ratelimit.Compile).
	snap.RateLimits = ratelimit.CompileAll(m.RateLimits, g.current.Load().RateLimits, ratelimit.Clock())
	snap.Caches = compileCaches(m.Caches, g.current.Load().Caches)
	if g.listeners != nil {
		if err := g.listeners.Reconcile(m.Listeners); err != nil {
			return nil, fmt.Errorf("opening listeners: %w", err)
		}
	}
	retire := func() {}
	if g.health != nil {
		retire = g.health.Update(m.Backends)
		// Let the first probe of new endpoints land before they can be picked, so a fresh
		// start or a new backend does not answer "no healthy endpoint" for a moment.
		waitChecked(ctx, snap, 3*time.Second)
	}
	g.gen++
	snap.Generation = g.gen
	snap.Applied = time.Now()
	g.current.Store(snap)
	// Endpoints that left are marked down only now that no new call can pick them.
	retire()

	keep := map[string]bool{}
	for _, b := range m.Backends {
		for _, e := range b.Endpoints {
			keep[e.Address] = true
		}
	}
	g.reg.Retain(keep)
	g.notify()
	return snap, nil
}

func waitChecked(ctx context.Context, snap *Snapshot, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending := false
		for _, b := range snap.Backends {
			for _, ep := range b.Endpoints {
				if !ep.Checked() {
					pending = true
				}
			}
		}
		if !pending {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Compile builds a snapshot from m without side effects other than creating endpoint
// state in reg. It fails when something in m cannot be served at all.
func Compile(m *config.Model, reg *balancer.Registry) (*Snapshot, error) {
	snap := &Snapshot{Model: m, Listeners: map[int]*Listener{}, Backends: map[string]*Backend{}}
	keys := make([]string, 0, len(m.Backends))
	for k := range m.Backends {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		snap.Backends[k] = compileBackend(m.Backends[k], reg)
	}
	for _, l := range m.Listeners {
		if _, dup := snap.Listeners[l.Port]; dup {
			return nil, fmt.Errorf("port %d is declared twice", l.Port)
		}
		cl := &Listener{Listener: l}
		if l.Protocol == config.HTTPS {
			cfg, err := serverTLS(l)
			if err != nil {
				return nil, fmt.Errorf("listener %d: %w", l.Port, err)
			}
			cl.TLS = cfg
		}
		entries := make([]*router.Entry[*Backend], 0, len(l.Routes))
		for _, r := range l.Routes {
			b := snap.Backends[r.Backend]
			if err := checkTargets(r, snap.Backends); err != nil {
				return nil, fmt.Errorf("listener %d: %w", l.Port, err)
			}
			entries = append(entries, &router.Entry[*Backend]{Route: r, Target: b})
		}
		cl.Routes = router.New(entries)
		snap.Listeners[l.Port] = cl
	}
	return snap, nil
}

func compileBackend(cb *config.Backend, reg *balancer.Registry) *Backend {
	b := &Backend{Backend: cb, Policy: cb.Resilience.Resolved()}
	for _, e := range cb.Endpoints {
		ep, created := reg.Get(e.Address)
		if created && cb.HealthCheck.Kind == config.CheckNone {
			ep.SetHealthy(true)
		}
		if !e.Ready || e.Terminating {
			// A terminating endpoint keeps its in-flight calls (the proxy does not cut
			// them) but is not offered new ones.
			ep.SetDraining(true)
			continue
		}
		ep.SetDraining(false)
		b.Endpoints = append(b.Endpoints, ep)
	}
	b.Picker = balancer.NewPicker(cb.Algorithm, b.Endpoints, cb.SlowStart.D())
	return b
}

// Subscribe returns a channel that receives a value after every successful Apply, and a
// func to stop the subscription. Sends never block: a slow reader misses intermediate
// generations but always sees the latest.
func (g *Gateway) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	g.subMu.Lock()
	g.subs[ch] = struct{}{}
	g.subMu.Unlock()
	return ch, func() {
		g.subMu.Lock()
		delete(g.subs, ch)
		g.subMu.Unlock()
	}
}

func (g *Gateway) notify() {
	g.subMu.Lock()
	defer g.subMu.Unlock()
	for ch := range g.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
