package admin

import (
	"cmp"
	"slices"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/reload"
)

// LiveView is the JSON of /api/v1/live: everything the admin page shows, read at one
// moment from the snapshot in force, the endpoint registry and the Live aggregator.
type LiveView struct {
	Now        time.Time `json:"now"`
	Generation uint64    `json:"generation"`
	Applied    time.Time `json:"applied,omitzero"`
	Ports      []int     `json:"ports"`
	// Inflight is the calls in flight to every endpoint, those that left included.
	Inflight  int64          `json:"inflight"`
	Calls     LiveCalls      `json:"calls"`
	Listeners []ListenerView `json:"listeners"`
	Ingresses []IngressRow   `json:"ingresses"`
	Backends  []BackendView  `json:"backends"`
	// Leaving are endpoints no longer in the configuration that still finish calls.
	Leaving  []EndpointView `json:"leaving"`
	Problems []ProblemView  `json:"problems"`
	// Rejected is the last reload when it was refused (as in /api/v1/status): Generation
	// keeps serving. Absent once a later reload is applied.
	Rejected *RejectedView `json:"rejected,omitempty"`
}

// RejectedView is a refused reload (reload.Rejection) with its problems as lines.
type RejectedView struct {
	At       time.Time     `json:"at"`
	Error    string        `json:"error"`
	Problems []ProblemView `json:"problems"`
	Serving  uint64        `json:"servingGeneration"` // 0 when none ever did
}

func rejectedView(r *reload.Rejection) *RejectedView {
	if r == nil {
		return nil
	}
	return &RejectedView{At: r.At, Error: r.Error, Problems: problemViews(r.Problems), Serving: r.Serving}
}

func problemViews(ps config.Problems) []ProblemView {
	out := make([]ProblemView, 0, len(ps))
	for _, p := range ps {
		out = append(out, ProblemView{Severity: p.Severity, Text: p.String()})
	}
	return out
}

// ListenerView is one port with its certificates and routes.
type ListenerView struct {
	Port         int               `json:"port"`
	Protocol     config.Protocol   `json:"protocol"`
	SSLPolicy    string            `json:"sslPolicy,omitempty"`
	MutualTLS    string            `json:"mutualTLS,omitempty"` // verify, passthrough, "" (off)
	Certificates []CertificateView `json:"certificates"`
	Routes       []config.Route    `json:"routes"`
}

// CertificateView is a served certificate's leaf.
type CertificateView struct {
	Ref      string    `json:"ref"`
	Subject  string    `json:"subject"`
	Names    []string  `json:"names"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"notAfter"`
	DaysLeft int       `json:"daysLeft"` // negative once expired
}

// BackendView is a backend with its endpoints.
type BackendView struct {
	Key         string         `json:"key"`
	Algorithm   string         `json:"algorithm"`
	HealthCheck string         `json:"healthCheck"`
	SlowStart   string         `json:"slowStart,omitempty"`
	Inflight    int64          `json:"inflight"`
	Endpoints   []EndpointView `json:"endpoints"`
	// Cache is what reply caches did for its calls over the last minute; nil when none
	// had a part in them.
	Cache *CacheStats `json:"cache,omitempty"`
}

// Endpoint states, worst first: what decides whether an endpoint takes new calls.
const (
	StateNotReady  = "not ready"  // the Service says it is not ready
	StateDraining  = "draining"   // terminating or removed: no new calls, finishing its own
	StateInitial   = "initial"    // waiting for its first health check
	StateUnhealthy = "unhealthy"  // failing its health check
	StateEjected   = "ejected"    // refused a connection; out for a few seconds
	StateSlowStart = "slow start" // healthy, its share of calls still ramping up
	StateHealthy   = "healthy"
)

// EndpointView is one endpoint's state and its calls over the last minute.
type EndpointView struct {
	Address  string     `json:"address"`
	State    string     `json:"state"`
	Inflight int64      `json:"inflight"`
	Calls    *CallStats `json:"calls,omitempty"`
}

// ProblemView is a configuration problem as one line.
type ProblemView struct {
	Severity config.Severity `json:"severity"`
	Text     string          `json:"text"`
}

// liveView reads the view at now. reg and live may be nil.
func liveView(snap *gateway.Snapshot, reg *balancer.Registry, live *Live, ports []int, address string, now time.Time) LiveView {
	v := LiveView{Now: now, Generation: snap.Generation, Applied: snap.Applied, Ports: ports,
		Ingresses: Rows(snap, address, ports), Listeners: []ListenerView{}, Backends: []BackendView{},
		Leaving: []EndpointView{}}
	if live != nil {
		v.Calls = live.Calls(now)
	}
	calls := map[string]*CallStats{}
	for i := range v.Calls.Endpoints {
		calls[v.Calls.Endpoints[i].Name] = &v.Calls.Endpoints[i]
	}
	for _, l := range snap.Model.Listeners {
		v.Listeners = append(v.Listeners, listenerView(l, snap.Listeners[l.Port], now))
	}
	registered := map[string]*balancer.Endpoint{}
	if reg != nil {
		for _, ep := range reg.All() {
			registered[ep.Addr] = ep
			v.Inflight += ep.Inflight()
		}
	}
	known := map[string]bool{}
	for _, b := range snap.Backends {
		bv := backendView(b, now, calls, registered)
		if cs, ok := v.Calls.Cache[b.Key]; ok {
			bv.Cache = &cs
		}
		for _, e := range bv.Endpoints {
			known[e.Address] = true
		}
		v.Backends = append(v.Backends, bv)
	}
	slices.SortFunc(v.Backends, func(a, b BackendView) int { return cmp.Compare(a.Key, b.Key) })
	for addr, ep := range registered {
		if !known[addr] {
			v.Leaving = append(v.Leaving, EndpointView{Address: addr, State: StateDraining, Inflight: ep.Inflight(), Calls: calls[addr]})
		}
	}
	slices.SortFunc(v.Leaving, func(a, b EndpointView) int { return cmp.Compare(a.Address, b.Address) })
	v.Problems = problemViews(snap.Problems)
	return v
}

func listenerView(l config.Listener, compiled *gateway.Listener, now time.Time) ListenerView {
	lv := ListenerView{Port: l.Port, Protocol: l.Protocol, SSLPolicy: l.TLS.Name, Certificates: []CertificateView{}, Routes: l.Routes}
	if l.MutualTLS != nil {
		lv.MutualTLS = l.MutualTLS.Mode
	}
	if compiled == nil || compiled.TLS == nil {
		return lv
	}
	// The compiled certificates are the configured ones, in order, with their leaves
	// parsed (tls.X509KeyPair fills Leaf).
	for i, c := range compiled.TLS.Certificates {
		if c.Leaf == nil || i >= len(l.Certificates) {
			continue
		}
		lv.Certificates = append(lv.Certificates, CertificateView{
			Ref: l.Certificates[i].Ref, Subject: c.Leaf.Subject.CommonName, Names: c.Leaf.DNSNames,
			Issuer: c.Leaf.Issuer.CommonName, NotAfter: c.Leaf.NotAfter,
			DaysLeft: int(c.Leaf.NotAfter.Sub(now).Hours() / 24),
		})
	}
	return lv
}

// backendView lists b's endpoints in the Service's order, with the state of those that
// may take calls; registered has every endpoint with calls, those terminating included.
func backendView(b *gateway.Backend, now time.Time, calls map[string]*CallStats, registered map[string]*balancer.Endpoint) BackendView {
	bv := BackendView{Key: b.Key, Algorithm: string(b.Algorithm), HealthCheck: string(b.HealthCheck.Kind)}
	if b.SlowStart > 0 {
		bv.SlowStart = b.SlowStart.D().String()
	}
	live := map[string]*balancer.Endpoint{}
	for _, ep := range b.Endpoints {
		live[ep.Addr] = ep
	}
	for _, e := range b.Backend.Endpoints {
		ev := EndpointView{Address: e.Address, Calls: calls[e.Address]}
		if ep := registered[e.Address]; ep != nil {
			ev.Inflight = ep.Inflight()
		}
		switch ep := live[e.Address]; {
		case ep != nil:
			ev.State = endpointState(ep, b.SlowStart.D(), now)
		case e.Terminating:
			ev.State = StateDraining
		default:
			ev.State = StateNotReady
		}
		bv.Inflight += ev.Inflight
		bv.Endpoints = append(bv.Endpoints, ev)
	}
	return bv
}

func endpointState(ep *balancer.Endpoint, slowStart time.Duration, now time.Time) string {
	switch {
	case ep.Draining():
		return StateDraining
	case !ep.Checked():
		return StateInitial
	case !ep.Healthy():
		return StateUnhealthy
	case ep.Ejected(now.UnixNano()):
		return StateEjected
	case slowStart > 0 && now.UnixNano()-ep.ReadySince() < slowStart.Nanoseconds():
		return StateSlowStart
	}
	return StateHealthy
}
