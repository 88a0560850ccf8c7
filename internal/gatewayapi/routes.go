package gatewayapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// route is a GRPCRoute or an HTTPRoute in the form both translate through.
type route struct {
	kind       string
	ns, name   string
	generation int64
	parents    []gwv1.ParentReference
	hostnames  []gwv1.Hostname
	rules      []rule
	r          *reporter
	ok         bool // every match and filter is supported (else Accepted False)
}

// rule is one rule: its matches and the backends calls go to.
type rule struct {
	matches  []match
	backends []gwv1.BackendRef
	filters  int // filters on the rule or its backendRefs: not supported
	at       *field.Path
}

// routes translates every GRPCRoute and HTTPRoute, the oldest first (the specification's
// precedence when two claim the same match).
func (t *translation) routes() {
	var all []*route
	for _, gr := range byAge(t.objs.GRPCRoutes) {
		all = append(all, t.grpcRoute(gr))
	}
	for _, hr := range byAge(t.objs.HTTPRoutes) {
		all = append(all, t.httpRoute(hr))
	}
	for _, rt := range all {
		t.route(rt)
	}
	sort.Slice(t.status.Routes, func(i, j int) bool {
		a, b := t.status.Routes[i], t.status.Routes[j]
		return a.Kind+" "+a.Namespace+"/"+a.Name < b.Kind+" "+b.Namespace+"/"+b.Name
	})
}

func (t *translation) newRoute(kind string, m metav1.ObjectMeta, spec gwv1.CommonRouteSpec, hostnames []gwv1.Hostname) *route {
	return &route{kind: kind, ns: namespaceOf(m.Namespace), name: m.Name, generation: m.Generation,
		parents: spec.ParentRefs, hostnames: hostnames, r: t.reporter(kind, m.Namespace, m.Name), ok: true}
}

func (t *translation) grpcRoute(gr *gwv1.GRPCRoute) *route {
	rt := t.newRoute("GRPCRoute", gr.ObjectMeta, gr.Spec.CommonRouteSpec, gr.Spec.Hostnames)
	for i := range gr.Spec.Rules {
		ru := &gr.Spec.Rules[i]
		x := rule{at: field.NewPath("spec", "rules").Index(i), filters: len(ru.Filters)}
		var ok bool
		x.matches, ok = grpcMatches(ru, x.at, rt.r)
		rt.ok = rt.ok && ok
		for _, b := range ru.BackendRefs {
			x.backends = append(x.backends, b.BackendRef)
			x.filters += len(b.Filters)
		}
		rt.rules = append(rt.rules, x)
	}
	return rt
}

func (t *translation) httpRoute(hr *gwv1.HTTPRoute) *route {
	rt := t.newRoute("HTTPRoute", hr.ObjectMeta, hr.Spec.CommonRouteSpec, hr.Spec.Hostnames)
	for i := range hr.Spec.Rules {
		ru := &hr.Spec.Rules[i]
		x := rule{at: field.NewPath("spec", "rules").Index(i), filters: len(ru.Filters)}
		var ok bool
		x.matches, ok = httpMatches(ru, x.at, rt.r)
		rt.ok = rt.ok && ok
		for _, b := range ru.BackendRefs {
			x.backends = append(x.backends, b.BackendRef)
			x.filters += len(b.Filters)
		}
		if ru.Timeouts != nil || ru.Retry != nil || ru.SessionPersistence != nil {
			rt.r.warnf(x.at, "timeouts, retry and sessionPersistence are ignored: milvus-lb's retries and limits are the backend's (README: resilience)")
		}
		rt.rules = append(rt.rules, x)
	}
	return rt
}

// route attaches one route to the listeners of its parents and writes its status.
func (t *translation) route(rt *route) {
	for _, x := range rt.rules {
		if x.filters > 0 {
			rt.r.errorf(x.at.Child("filters"), "filters are not supported")
			rt.ok = false
		}
	}
	targets, resolved := t.targets(rt)
	st := config.RouteStatus{Kind: rt.kind, Namespace: rt.ns, Name: rt.name, Generation: rt.generation}
	for i, pr := range rt.parents {
		at := field.NewPath("spec", "parentRefs").Index(i)
		g, mine := t.parent(rt, pr, at)
		if !mine {
			continue
		}
		ps := config.RouteParentStatus{Namespace: g.ns, Name: g.gw.Name, SectionName: string(deref((*string)(pr.SectionName)))}
		if pr.Port != nil {
			ps.Port = int(*pr.Port)
		}
		ps.Conditions = []config.StatusCondition{t.attach(rt, g, pr, at, targets), resolved}
		st.Parents = append(st.Parents, ps)
	}
	if len(st.Parents) > 0 {
		t.status.Routes = append(t.status.Routes, st)
	}
}

// parent finds the Gateway a parentRef names; mine is false for another kind of parent
// or a Gateway of another class (not ours to report on).
func (t *translation) parent(rt *route, pr gwv1.ParentReference, at *field.Path) (*gatewayState, bool) {
	if (pr.Group != nil && string(*pr.Group) != Group) || (pr.Kind != nil && *pr.Kind != "Gateway") {
		return nil, false
	}
	ns := rt.ns
	if pr.Namespace != nil {
		ns = string(*pr.Namespace)
	}
	if g := t.gateways[ns+"/"+string(pr.Name)]; g != nil {
		return g, true
	}
	for _, gw := range t.objs.Gateways {
		if gw != nil && namespaceOf(gw.Namespace) == ns && gw.Name == string(pr.Name) {
			return nil, false // another implementation's
		}
	}
	rt.r.warnf(at.Child("name"), fmt.Sprintf("%s not found; the route is not attached to it", ingress.ObjectName("Gateway", ns, string(pr.Name))))
	return nil, false
}

// attach puts the route's matches on the listeners of g that pr selects, allow it and
// share a hostname with it, and returns the parent's Accepted condition.
func (t *translation) attach(rt *route, g *gatewayState, pr gwv1.ParentReference, at *field.Path, targets [][]config.WeightedBackend) config.StatusCondition {
	var named, allowed []*listenerState
	for _, ls := range g.listeners {
		if (pr.SectionName == nil || string(*pr.SectionName) == ls.name) && (pr.Port == nil || int(*pr.Port) == ls.port) && ls.ok {
			named = append(named, ls)
		}
	}
	for _, ls := range named {
		if ls.kinds[rt.kind] && ls.allows(t, rt.ns, g.ns) {
			allowed = append(allowed, ls)
		}
	}
	switch {
	case len(named) == 0:
		msg := fmt.Sprintf("no served listener of Gateway %s/%s matches this parentRef", g.ns, g.gw.Name)
		rt.r.errorf(at, msg)
		return cond("Accepted", false, "NoMatchingParent", msg)
	case len(allowed) == 0:
		msg := fmt.Sprintf("the listeners of Gateway %s/%s do not allow %s from namespace %s (allowedRoutes)", g.ns, g.gw.Name, rt.kind, rt.ns)
		rt.r.errorf(at, msg)
		return cond("Accepted", false, "NotAllowedByListeners", msg)
	case !rt.ok:
		return cond("Accepted", false, "UnsupportedValue", "the route uses a match or filter milvus-lb does not support: see its problems")
	}
	attached := 0
	for _, ls := range allowed {
		hosts, ok := intersect(ls.hostname, rt.hostnames)
		if !ok {
			continue
		}
		attached++
		ls.attached++
		t.addRoutes(rt, ls, hosts, targets)
	}
	if attached == 0 {
		msg := fmt.Sprintf("no hostname of the route matches a listener of Gateway %s/%s", g.ns, g.gw.Name)
		rt.r.errorf(field.NewPath("spec", "hostnames"), msg)
		return cond("Accepted", false, "NoMatchingListenerHostname", msg)
	}
	return cond("Accepted", true, "Accepted", "")
}

// addRoutes adds the route's matches for each host to the listener's port. A match
// that an older route already holds stays with it.
func (t *translation) addRoutes(rt *route, ls *listenerState, hosts []string, targets [][]config.WeightedBackend) {
	p := t.ports[ls.port]
	owner := ingress.ObjectName(rt.kind, rt.ns, rt.name)
	for i, x := range rt.rules {
		for _, m := range x.matches {
			for _, h := range hosts {
				cr := config.Route{Host: h, MultiLabel: strings.HasPrefix(h, "*."), Path: m.path, PathType: m.pathType, Ingress: owner, Conditions: m.conditions}
				setTargets(&cr, targets[i], rt.kind)
				key := routeKey(cr)
				if prev, dup := p.routes[key]; dup {
					if prev != owner {
						rt.r.warnf(m.at, fmt.Sprintf("host %s and this match on port %d are already routed by %s, the older; ignored here", describeHost(h), ls.port, prev))
					}
					continue
				}
				p.routes[key] = owner
				p.cfg.Routes = append(p.cfg.Routes, cr)
			}
		}
	}
}

// setTargets sends the route to its one backend, splits it by weight, or, when no
// backend can take a call, answers as the specification asks: HTTP 500 for an HTTPRoute,
// UNAVAILABLE (HTTP 503, as gRPC maps it) for a GRPCRoute.
func setTargets(cr *config.Route, ws []config.WeightedBackend, kind string) {
	var live []config.WeightedBackend
	for _, w := range ws {
		if w.Weight > 0 {
			live = append(live, w)
		}
	}
	switch {
	case len(live) == 0:
		code := 500
		if kind == "GRPCRoute" {
			code = 503
		}
		cr.Fixed = &config.FixedResponse{StatusCode: code, ContentType: "text/plain", MessageBody: "no backend of this route can take the call"}
	case len(live) == 1:
		cr.Backend = live[0].Backend
	default:
		cr.Forward = live
	}
}

func routeKey(r config.Route) string {
	c, _ := json.Marshal(r.Conditions)
	return r.Host + " " + string(r.PathType) + " " + r.Path + " " + string(c)
}

func describeHost(h string) string {
	if h == "" {
		return "(any)"
	}
	return h
}

// intersect returns the hosts a route serves on a listener: the route's hostnames that
// the listener's hostname covers (the more specific of each pair), or the listener's
// when the route names none; ok is false when they share none.
func intersect(listener string, hostnames []gwv1.Hostname) ([]string, bool) {
	if len(hostnames) == 0 {
		return []string{listener}, true
	}
	var out []string
	for _, hn := range hostnames {
		h := strings.ToLower(string(hn))
		switch {
		case listener == "" || listener == h:
			out = append(out, h)
		case covers(listener, h):
			out = append(out, h)
		case covers(h, listener):
			out = append(out, listener)
		}
	}
	return out, len(out) > 0
}

// covers reports whether wildcard pattern p ("*.example.com") covers h, a name or a
// narrower wildcard.
func covers(p, h string) bool {
	suffix, ok := strings.CutPrefix(p, "*")
	return ok && strings.HasSuffix(h, suffix) && len(h) > len(suffix)
}

// targets resolves each rule's backendRefs to weighted backends; the condition is the
// route's ResolvedRefs. A backend that cannot be resolved is left out of its rule, so the
// others keep serving.
func (t *translation) targets(rt *route) ([][]config.WeightedBackend, config.StatusCondition) {
	resolved := cond("ResolvedRefs", true, "ResolvedRefs", "")
	fail := func(reason string, at *field.Path, msg string) {
		rt.r.errorf(at, msg)
		if resolved.Status {
			resolved = cond("ResolvedRefs", false, reason, msg)
		}
	}
	out := make([][]config.WeightedBackend, len(rt.rules))
	for i, x := range rt.rules {
		for j, b := range x.backends {
			at := x.at.Child("backendRefs").Index(j)
			key, reason, msg := t.backend(rt, b)
			if reason != "" {
				fail(reason, at, msg)
				continue
			}
			w := 1
			if b.Weight != nil {
				w = int(*b.Weight)
			}
			out[i] = append(out[i], config.WeightedBackend{Backend: key, Weight: w})
		}
	}
	return out, resolved
}

// backend resolves one backendRef to a backend key, or says why it cannot.
func (t *translation) backend(rt *route, b gwv1.BackendRef) (key, reason, msg string) {
	if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
		return "", "InvalidKind", "only core Services are supported as backendRefs"
	}
	ns := rt.ns
	if b.Namespace != nil && string(*b.Namespace) != rt.ns {
		ns = string(*b.Namespace)
		if !t.grants.allow(rt.kind, rt.ns, "Service", ns, string(b.Name)) {
			return "", "RefNotPermitted", fmt.Sprintf("no ReferenceGrant in namespace %s lets %ss of namespace %s use Service %s", ns, rt.kind, rt.ns, b.Name)
		}
	}
	if b.Port == nil {
		return "", "BackendNotFound", "port is required for a Service"
	}
	be, warning, err := t.look.ServiceBackend(ns, string(b.Name), int32(*b.Port), t.routeSettings(rt))
	if err != nil {
		// Not found, or no such port: either way the reference names nothing to call.
		return "", "BackendNotFound", err.Error()
	}
	if warning != "" {
		rt.r.warnf(nil, warning)
	}
	if t.backends[be.Key] == nil {
		t.backends[be.Key] = be
	}
	return be.Key, "", ""
}

// routeSettings are the backend settings of the route's GatewayClass: that of its first
// parent Gateway that milvus-lb serves. A Service port that routes of two classes use
// gets the settings of the first route that resolves it.
func (t *translation) routeSettings(rt *route) ingress.BackendSettings {
	for _, pr := range rt.parents {
		if pr.Kind != nil && *pr.Kind != "Gateway" {
			continue
		}
		ns := rt.ns
		if pr.Namespace != nil {
			ns = string(*pr.Namespace)
		}
		if g := t.gateways[ns+"/"+string(pr.Name)]; g != nil {
			return t.classSettings[string(g.gw.Spec.GatewayClassName)]
		}
	}
	return t.defaultSettings
}
