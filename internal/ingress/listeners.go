package ingress

import (
	"reflect"
	"sort"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// listenerState is a listener being assembled from the Ingresses that use its port.
type listenerState struct {
	cfg          config.Listener
	group        string // group.name of the Ingresses on it ("" = no group)
	owner        string // the Ingress that claimed the port first
	policy       string // the explicit ssl-policy, if any Ingress set one
	policyOwner  string
	mtls         *config.MutualTLS // the mutual-authentication of the port, if any Ingress set one
	mtlsOwner    string
	certs        []certificate
	plans        []*plan
	certRefsSeen map[string]bool
}

// routeKey identifies a route on a listener; two Ingresses may not both declare one.
type routeKey struct {
	port       int
	host       string
	pathType   config.PathType
	path       string
	conditions string // routeKeyOf
}

// builder merges accepted Ingresses onto listeners. Ingresses are added in precedence
// order (creation time, then namespace/name); the first to claim something keeps it and a
// later Ingress that conflicts is rejected as a whole, so that an Ingress is either served
// as written or not at all.
type builder struct {
	listeners    map[int]*listenerState
	routes       map[routeKey]string // → ns/name of the owning Ingress
	backends     map[string]*config.Backend
	backendOwner map[string]string
	conflicts    map[*plan]*reporter
	accepted     []*plan
}

func newBuilder() *builder {
	return &builder{
		listeners:    map[int]*listenerState{},
		routes:       map[routeKey]string{},
		backends:     map[string]*config.Backend{},
		backendOwner: map[string]string{},
		conflicts:    map[*plan]*reporter{},
	}
}

func describeGroup(g string) string {
	if g == "" {
		return "no group"
	}
	return "group " + g
}

// add merges p, or reports why it conflicts with what is already there and leaves the
// builder unchanged. It returns whether p was accepted.
func (b *builder) add(p *plan) bool {
	cr := &reporter{file: p.r.file, object: p.r.object}
	b.conflicts[p] = cr
	b.checkConflicts(p, cr)
	if cr.failed() {
		return false
	}
	b.mergeListeners(p)
	b.mergeBackends(p, cr)
	b.accepted = append(b.accepted, p)
	return true
}

// checkConflicts reports what p asks of ports and routes that Ingresses added before it
// hold otherwise.
func (b *builder) checkConflicts(p *plan, cr *reporter) {
	for _, lp := range p.s.ports {
		l := b.listeners[lp.Port]
		if l == nil {
			continue
		}
		switch {
		case l.group != p.s.group:
			at := annotationPath(AnnotationListenPorts)
			if p.s.group != "" {
				at = annotationPath(AnnotationGroupName)
			}
			cr.errorf(at, "port %d is served by Ingress %s (%s); Ingresses of different groups cannot share a port", lp.Port, l.owner, describeGroup(l.group))
		case l.cfg.Protocol != lp.Protocol:
			cr.errorf(annotationPath(AnnotationListenPorts), "port %d is %s for Ingress %s; it cannot also be %s", lp.Port, l.cfg.Protocol, l.owner, lp.Protocol)
		case lp.Protocol == config.HTTPS && p.s.sslPolicy != "" && l.policy != "" && l.policy != p.s.sslPolicy:
			cr.errorf(annotationPath(AnnotationSSLPolicy), "port %d already uses ssl-policy %s set by Ingress %s", lp.Port, l.policy, l.policyOwner)
		case lp.Protocol == config.HTTPS && p.mtls[lp.Port] != nil && l.mtls != nil && !sameMutualTLS(l.mtls, p.mtls[lp.Port]):
			cr.errorf(annotationPath(AnnotationMutualAuthentication), "port %d already uses mutual-authentication %s set by Ingress %s", lp.Port, describeMTLS(l.mtls), l.mtlsOwner)
		}
	}
	for _, rt := range p.routes {
		for _, lp := range p.s.ports {
			k := routeKeyOf(rt.Route, lp.Port)
			if owner, dup := b.routes[k]; dup {
				cr.errorf(rt.field, "host %s path %q (%s) on port %d is already routed by Ingress %s", describeHost(rt.Host), rt.Path, rt.PathType, lp.Port, owner)
			}
		}
	}
}

// mergeListeners adds p's ports, certificates, policies and routes to the listeners.
func (b *builder) mergeListeners(p *plan) {
	for _, lp := range p.s.ports {
		l := b.listeners[lp.Port]
		if l == nil {
			l = &listenerState{
				cfg:          config.Listener{Port: lp.Port, Protocol: lp.Protocol},
				group:        p.s.group,
				owner:        p.key,
				certRefsSeen: map[string]bool{},
			}
			b.listeners[lp.Port] = l
		}
		l.plans = append(l.plans, p)
		if lp.Protocol == config.HTTPS {
			if p.s.sslPolicy != "" && l.policy == "" {
				l.policy, l.policyOwner = p.s.sslPolicy, p.key
			}
			if m := p.mtls[lp.Port]; m != nil && l.mtls == nil {
				l.mtls, l.mtlsOwner = m, p.key
			}
			for _, c := range p.certs {
				if !l.certRefsSeen[c.Ref] {
					l.certRefsSeen[c.Ref] = true
					l.certs = append(l.certs, c)
				}
			}
		}
		for _, rt := range p.routes {
			route := rt.Route
			if lp.Protocol == config.HTTP && p.s.sslRedirect != 0 {
				route.SSLRedirect = p.s.sslRedirect
			}
			l.cfg.Routes = append(l.cfg.Routes, route)
			b.routes[routeKeyOf(rt.Route, lp.Port)] = p.key
		}
	}
}

// mergeBackends adds p's backends; one already added keeps its settings.
func (b *builder) mergeBackends(p *plan, cr *reporter) {
	for _, pb := range p.backends {
		if have := b.backends[pb.Key]; have != nil {
			if !sameTargetGroup(have, pb.Backend) {
				cr.warnf(pb.field, "backend %s is also used by Ingress %s with different target group settings (protocol, health check or attributes); the settings of %s apply", pb.Key, b.backendOwner[pb.Key], b.backendOwner[pb.Key])
			}
			continue
		}
		b.backends[pb.Key] = pb.Backend
		b.backendOwner[pb.Key] = p.key
	}
}

func sameTargetGroup(a, b *config.Backend) bool {
	return a.Protocol == b.Protocol && a.TLS == b.TLS && a.Algorithm == b.Algorithm &&
		a.HealthCheck == b.HealthCheck && a.DeregistrationDelay == b.DeregistrationDelay &&
		a.SlowStart == b.SlowStart && a.Resilience == b.Resilience &&
		reflect.DeepEqual(a.Standby, b.Standby) && reflect.DeepEqual(a.Mirror, b.Mirror)
}

// certless returns the HTTPS listeners that ended up without any certificate, by port.
func (b *builder) certless() []*listenerState {
	var out []*listenerState
	for _, l := range b.listeners {
		if l.cfg.Protocol == config.HTTPS && len(l.certs) == 0 {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Port < out[j].cfg.Port })
	return out
}

// checkCoverage warns about hosts that no certificate of their HTTPS listener is valid
// for: the client then gets the default certificate and, with server_name set, fails the
// handshake.
func (b *builder) checkCoverage() {
	for _, p := range b.accepted {
		for _, lp := range p.s.ports {
			l := b.listeners[lp.Port]
			if l.cfg.Protocol != config.HTTPS || len(l.certs) == 0 {
				continue
			}
			for _, h := range p.hosts {
				if !covers(l.certs, h.host) {
					b.conflicts[p].warnf(h.field, "no certificate on port %d covers host %s; clients get the default certificate %s", lp.Port, h.host, l.certs[0].Ref)
				}
			}
		}
	}
}

// result returns the listeners sorted by port, each with its routes most specific first.
func (b *builder) result() []config.Listener {
	out := make([]config.Listener, 0, len(b.listeners))
	for _, l := range b.listeners {
		cfg := l.cfg
		if cfg.Protocol == config.HTTPS {
			name := l.policy
			if name == "" {
				name = DefaultSSLPolicy
			}
			// Known: the annotation's parser accepts only policies in the table.
			cfg.TLS, _ = LookupSSLPolicy(name)
			cfg.MutualTLS = l.mtls
			for _, c := range l.certs {
				cfg.Certificates = append(cfg.Certificates, c.Certificate)
			}
		}
		if cfg.Routes == nil {
			cfg.Routes = []config.Route{} // an Ingress may claim a port with no rule
		}
		sortRoutes(cfg.Routes)
		out = append(out, cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// sortRoutes orders routes as the router matches them: exact hosts, then wildcard hosts
// (longer suffix first), then the rules for any host; within a host, Exact paths, then
// longer Prefix paths before shorter ones. Ties break by name so the order is total.
func sortRoutes(rs []config.Route) {
	hostRank := func(h string) int {
		switch {
		case h == "":
			return 2
		case len(h) > 1 && h[0] == '*':
			return 1
		}
		return 0
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ra, rb := hostRank(a.Host), hostRank(b.Host); ra != rb {
			return ra < rb
		}
		if a.Host != b.Host {
			if len(a.Host) != len(b.Host) && hostRank(a.Host) == 1 {
				return len(a.Host) > len(b.Host)
			}
			return a.Host < b.Host
		}
		if ea, eb := a.PathType == config.PathExact, b.PathType == config.PathExact; ea != eb {
			return ea
		}
		if len(a.Path) != len(b.Path) {
			return len(a.Path) > len(b.Path)
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		// Routes with conditions first, as the router tries them.
		return len(a.Conditions) > 0 && len(b.Conditions) == 0
	})
}

func describeHost(h string) string {
	if h == "" {
		return "(any)"
	}
	return h
}

func describeMTLS(m *config.MutualTLS) string {
	if m.TrustStore != "" {
		return m.Mode + " with trust store " + m.TrustStore
	}
	return m.Mode
}
