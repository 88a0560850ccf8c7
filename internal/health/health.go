// Package health runs the active health checks of backend endpoints and writes their
// verdicts into the balancer.Registry, which the pickers read.
//
// There is one probe per endpoint address, whatever the number of backends that list it,
// because health is a property of the address (the Registry is keyed by address too). A
// probe checks, waits Interval, checks again. An endpoint starts unhealthy and its first
// result decides at once, so a fresh balancer serves after one check rather than after
// HealthyThreshold × Interval. Until its first pass an endpoint is taken to be starting: it
// is probed every second and that first pass counts at once. After that it takes
// HealthyThreshold passes in a row to become healthy and UnhealthyThreshold failures in a
// row to become unhealthy, as on the ALB.
package health

import (
	"cmp"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Defaults for a HealthCheck whose fields are zero; they match the ingress translator's.
const (
	DefaultInterval  = 15 * time.Second
	DefaultTimeout   = 5 * time.Second
	DefaultThreshold = 2
	// The ALB's gRPC check: any gRPC server answers an unknown method with UNIMPLEMENTED.
	DefaultGRPCPath  = "/AWS.ALB/healthcheck"
	DefaultGRPCCodes = "12"
	DefaultHTTPPath  = "/"
	DefaultHTTPCodes = "200"
)

// Checker owns the probes. Update, Status and Close may be called concurrently.
type Checker struct {
	reg *balancer.Registry
	log *slog.Logger

	mu     sync.Mutex
	probes map[string]*probe // by address
	closed bool
	wg     sync.WaitGroup // probe goroutines
}

// New returns a Checker that writes into reg. It probes nothing until Update.
func New(reg *balancer.Registry, logger *slog.Logger) *Checker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Checker{reg: reg, log: logger, probes: make(map[string]*probe)}
}

// spec is everything a probe's behaviour depends on; a change restarts the probe.
type spec struct {
	addr    string
	backend string // Backend.Key, for logs
	hc      config.HealthCheck
	tls     bool
}

// Update reconciles the probes with backends: it starts a probe for every ready,
// non-terminating endpoint address, and stops the probes of addresses that are gone.
// When two backends list the same address, the one whose key sorts first decides its
// check. A probe whose check changed restarts, and its first result decides at once; an
// address that is no longer probed is marked unhealthy.
//
// The probes of addresses that are gone are stopped by retire, which the caller runs once
// the snapshot without them is in force: until then the old snapshot still picks them,
// and marking them unhealthy earlier would answer "no healthy endpoint" in between.
//
// Update does not block on probes in flight. Call it before balancer.Registry.Retain, so
// that an address still in the model is never dropped from the registry under its probe.
func (c *Checker) Update(backends map[string]*config.Backend) (retire func()) {
	want := make(map[string]spec)
	for _, key := range slices.Sorted(maps.Keys(backends)) {
		b := backends[key]
		if b == nil {
			continue
		}
		for _, ep := range b.Endpoints {
			if !ep.Ready || ep.Terminating {
				continue
			}
			if _, taken := want[ep.Address]; taken {
				continue
			}
			want[ep.Address] = specFor(key, b, ep.Address)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var gone []*probe
	retire = func() {
		for _, p := range gone {
			p.stop(true)
		}
	}
	if c.closed {
		return retire
	}
	for addr, p := range c.probes {
		s, ok := want[addr]
		switch {
		case !ok:
			gone = append(gone, p)
			delete(c.probes, addr)
		case s != p.spec:
			p.stop(false)
			delete(c.probes, addr)
		}
	}
	for addr, s := range want {
		if _, running := c.probes[addr]; running {
			continue
		}
		ep, _ := c.reg.Get(addr)
		p := newProbe(s, ep, c.log)
		c.probes[addr] = p
		if s.hc.Kind == config.CheckNone {
			p.observe(nil)
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			p.run()
		}()
	}
	return retire
}

// specFor resolves a backend's check for one address.
func specFor(key string, b *config.Backend, addr string) spec {
	hc := b.HealthCheck
	if hc.Kind == "" {
		hc.Kind = config.CheckMilvus
	}
	// The backend's TLS applies when the check goes to the traffic port. The ingress
	// translator already folds it into HealthCheck.TLS; a hand-written model may not.
	tls := hc.TLS || (b.TLS && trafficPort(hc.Port))
	return spec{addr: addr, backend: key, hc: hc, tls: tls}
}

func trafficPort(p string) bool { return p == "" || p == "traffic-port" }

// target is the host:port a probe connects to: the endpoint's address, with the port
// replaced when the check names one.
func (s spec) target() string {
	if trafficPort(s.hc.Port) {
		return s.addr
	}
	host, _, err := net.SplitHostPort(s.addr)
	if err != nil {
		host = s.addr
	}
	return net.JoinHostPort(host, s.hc.Port)
}

// Status is one probe's view, for status pages.
type Status struct {
	Address string                 `json:"address"`
	Backend string                 `json:"backend"`
	Kind    config.HealthCheckKind `json:"kind"`
	Healthy bool                   `json:"healthy"`
	// Checked is false until the first result.
	Checked bool `json:"checked"`
	// Reason is why the last check failed; empty when it passed.
	Reason    string    `json:"reason,omitempty"`
	LastCheck time.Time `json:"lastCheck,omitzero"`
}

// Status returns every probe's state, by address.
func (c *Checker) Status() []Status {
	c.mu.Lock()
	out := make([]Status, 0, len(c.probes))
	for _, p := range c.probes {
		out = append(out, p.status())
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

// Close stops every probe and waits for their goroutines and connections to end. The
// endpoints keep their last verdict. Update after Close does nothing.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	for addr, p := range c.probes {
		p.stop(false)
		delete(c.probes, addr)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
