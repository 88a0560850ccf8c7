package gatewayapi

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// gatewayState is a Gateway of a served class being translated.
type gatewayState struct {
	gw        *gwv1.Gateway
	ns        string
	r         *reporter
	listeners []*listenerState
}

// listenerState is one listener of a Gateway: its conditions so far and, when it may
// take routes (ok), the port it serves on.
type listenerState struct {
	name      string
	at        *field.Path
	port      int
	protocol  config.Protocol
	hostname  string // "" for any
	kinds     map[string]bool
	fromAll   bool            // allowedRoutes.namespaces.from All
	selector  labels.Selector // allowedRoutes.namespaces.from Selector; nil for Same and All
	ok        bool
	attached  int
	accepted  config.StatusCondition
	resolved  config.StatusCondition
	program   config.StatusCondition
	conflict  *config.StatusCondition
	supported []string
}

// portState is a served port being assembled from the listeners on it.
type portState struct {
	cfg      config.Listener
	owner    string // the Gateway that claimed the port first
	certSeen map[string]bool
	routes   map[string]string // route key → the route that holds it
}

// gateway translates one Gateway of a served class (others are not ours).
func (t *translation) gateway(gw *gwv1.Gateway) {
	if !t.served[string(gw.Spec.GatewayClassName)] {
		return
	}
	ns := namespaceOf(gw.Namespace)
	g := &gatewayState{gw: gw, ns: ns, r: t.reporter("Gateway", gw.Namespace, gw.Name)}
	if t.gateways == nil {
		t.gateways = map[string]*gatewayState{}
	}
	t.gateways[ns+"/"+gw.Name] = g
	t.gatewayOrder = append(t.gatewayOrder, g)
	if len(gw.Spec.Addresses) > 0 {
		g.r.warnf(field.NewPath("spec", "addresses"), "ignored: milvus-lb serves on the addresses it binds, and reports them in status.addresses")
	}
	for i := range gw.Spec.Listeners {
		g.listeners = append(g.listeners, t.listener(g, i))
	}
}

// listener checks one listener and, if it can be served, claims its port.
func (t *translation) listener(g *gatewayState, i int) *listenerState {
	l := &g.gw.Spec.Listeners[i]
	ls := &listenerState{
		name: string(l.Name), at: field.NewPath("spec", "listeners").Index(i), port: int(l.Port),
		accepted: cond("Accepted", true, "Accepted", ""),
		resolved: cond("ResolvedRefs", true, "ResolvedRefs", ""),
		program:  cond("Programmed", true, "Programmed", ""),
	}
	switch l.Protocol {
	case gwv1.HTTPProtocolType:
		ls.protocol = config.HTTP
	case gwv1.HTTPSProtocolType:
		ls.protocol = config.HTTPS
	default:
		ls.fail(g.r, &ls.accepted, "UnsupportedProtocol", ls.at.Child("protocol"),
			fmt.Sprintf("protocol %s is not supported: milvus-lb serves HTTP and HTTPS listeners", l.Protocol))
	}
	if l.Hostname != nil {
		ls.hostname = strings.ToLower(string(*l.Hostname))
		if errs := hostErrors(ls.hostname); len(errs) > 0 {
			ls.fail(g.r, &ls.accepted, "UnsupportedValue", ls.at.Child("hostname"),
				fmt.Sprintf("invalid hostname %q: %s", ls.hostname, strings.Join(errs, "; ")))
		}
	}
	t.allowedRoutes(g, l, ls)
	var certs []config.Certificate
	if ls.protocol == config.HTTPS {
		certs = t.listenerCerts(g, l, ls)
	}
	// A listener with some invalid certificateRefs is still served with the valid ones
	// (ResolvedRefs False says which are not), as the specification allows.
	if ls.accepted.Status && (ls.protocol == config.HTTP || len(certs) > 0) {
		t.claimPort(g, ls, certs)
	}
	ls.ok = ls.accepted.Status && ls.conflict == nil && (ls.protocol == config.HTTP || len(certs) > 0)
	if !ls.ok && ls.program.Status {
		ls.program = cond("Programmed", false, "Invalid", "the listener is not served: see its other conditions")
	}
	return ls
}

// fail sets c False with reason and reports msg as an error at at.
func (ls *listenerState) fail(r *reporter, c *config.StatusCondition, reason string, at *field.Path, msg string) {
	if c.Status {
		*c = cond(c.Type, false, reason, msg)
	}
	r.errorf(at, msg)
}

// hostErrors validates a listener or route hostname (a DNS name, or "*." and one).
func hostErrors(h string) []string {
	if strings.HasPrefix(h, "*.") {
		return validation.IsWildcardDNS1123Subdomain(h)
	}
	return validation.IsDNS1123Subdomain(h)
}

// routeKinds are the route kinds milvus-lb serves on HTTP and HTTPS listeners.
var routeKinds = []string{"GRPCRoute", "HTTPRoute"}

// allowedRoutes reads which routes may attach: kinds (default both) and namespaces
// (Same by default, All, or those whose labels a Selector matches).
func (t *translation) allowedRoutes(g *gatewayState, l *gwv1.Listener, ls *listenerState) {
	ls.kinds = map[string]bool{}
	at := ls.at.Child("allowedRoutes")
	if ar := l.AllowedRoutes; ar != nil && len(ar.Kinds) > 0 {
		for j, k := range ar.Kinds {
			grp := Group
			if k.Group != nil {
				grp = string(*k.Group)
			}
			if grp != Group || (k.Kind != "GRPCRoute" && k.Kind != "HTTPRoute") {
				ls.fail(g.r, &ls.resolved, "InvalidRouteKinds", at.Child("kinds").Index(j),
					fmt.Sprintf("route kind %s/%s is not supported: milvus-lb serves GRPCRoute and HTTPRoute", grp, k.Kind))
				continue
			}
			ls.kinds[string(k.Kind)] = true
		}
	} else {
		for _, k := range routeKinds {
			ls.kinds[k] = true
		}
	}
	for _, k := range routeKinds {
		if ls.kinds[k] {
			ls.supported = append(ls.supported, k)
		}
	}
	if ar := l.AllowedRoutes; ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil {
		switch *ar.Namespaces.From {
		case gwv1.NamespacesFromAll:
			ls.fromAll = true
		case gwv1.NamespacesFromSame:
		case gwv1.NamespacesFromSelector:
			t.namespaceSelector(g, ar.Namespaces.Selector, ls, at.Child("namespaces", "selector"))
		default:
			ls.fail(g.r, &ls.accepted, "UnsupportedValue", at.Child("namespaces", "from"),
				fmt.Sprintf("namespaces.from %s is not supported: use Same, All or Selector", *ar.Namespaces.From))
		}
	}
}

// namespaceSelector reads allowedRoutes.namespaces.selector (from: Selector).
func (t *translation) namespaceSelector(g *gatewayState, sel *metav1.LabelSelector, ls *listenerState, at *field.Path) {
	if sel == nil {
		ls.fail(g.r, &ls.accepted, "UnsupportedValue", at, "namespaces.from Selector needs a selector")
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		ls.fail(g.r, &ls.accepted, "UnsupportedValue", at, fmt.Sprintf("invalid selector: %v", err))
		return
	}
	ls.selector = s
}

// allows reports whether routes of namespace ns may attach to the listener (its
// allowedRoutes.namespaces); gatewayNS is the listener's Gateway's namespace.
func (ls *listenerState) allows(t *translation, ns, gatewayNS string) bool {
	switch {
	case ls.fromAll:
		return true
	case ls.selector != nil:
		return ls.selector.Matches(labels.Set(t.namespaceLabels[ns]))
	default:
		return ns == gatewayNS
	}
}

// listenerCerts resolves an HTTPS listener's certificateRefs to kubernetes.io/tls Secrets.
func (t *translation) listenerCerts(g *gatewayState, l *gwv1.Listener, ls *listenerState) []config.Certificate {
	at := ls.at.Child("tls")
	if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
		ls.fail(g.r, &ls.accepted, "UnsupportedValue", at.Child("mode"), fmt.Sprintf("tls.mode %s is not supported: milvus-lb terminates TLS", *l.TLS.Mode))
		return nil
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		ls.fail(g.r, &ls.resolved, "InvalidCertificateRef", at.Child("certificateRefs"), "an HTTPS listener needs a certificateRef to a kubernetes.io/tls Secret")
		return nil
	}
	var out []config.Certificate
	for j, ref := range l.TLS.CertificateRefs {
		rat := at.Child("certificateRefs").Index(j)
		if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
			ls.fail(g.r, &ls.resolved, "InvalidCertificateRef", rat, "only core Secrets are supported as certificateRefs")
			continue
		}
		ns := g.ns
		if ref.Namespace != nil && string(*ref.Namespace) != g.ns {
			ns = string(*ref.Namespace)
			if !t.grants.allow("Gateway", g.ns, "Secret", ns, string(ref.Name)) {
				ls.fail(g.r, &ls.resolved, "RefNotPermitted", rat.Child("namespace"),
					fmt.Sprintf("no ReferenceGrant in namespace %s lets Gateways of namespace %s use Secret %s", ns, g.ns, ref.Name))
				continue
			}
		}
		c, _, err := t.look.TLSCertificate(ns, string(ref.Name))
		if err != nil {
			ls.fail(g.r, &ls.resolved, "InvalidCertificateRef", rat.Child("name"), err.Error())
			continue
		}
		out = append(out, c)
	}
	return out
}

// claimPort puts a listener on its port, or marks why it cannot be: the port serves
// Ingresses (PortUnavailable), or another protocol for an older listener (Conflicted).
func (t *translation) claimPort(g *gatewayState, ls *listenerState, certs []config.Certificate) {
	owner := ingress.ObjectName("Gateway", g.ns, g.gw.Name)
	if ing, ok := t.taken[ls.port]; ok {
		ls.fail(g.r, &ls.accepted, "PortUnavailable", ls.at.Child("port"), fmt.Sprintf("port %d is served by %s; a Gateway cannot share a port with Ingresses", ls.port, ing))
		return
	}
	p := t.ports[ls.port]
	if p != nil && p.cfg.Protocol != ls.protocol {
		c := cond("Conflicted", true, "ProtocolConflict", fmt.Sprintf("port %d is %s for %s", ls.port, p.cfg.Protocol, p.owner))
		ls.conflict = &c
		g.r.errorf(ls.at.Child("protocol"), c.Message+"; it cannot also be "+string(ls.protocol))
		return
	}
	if p == nil {
		p = &portState{cfg: config.Listener{Port: ls.port, Protocol: ls.protocol, Routes: []config.Route{}},
			owner: owner, certSeen: map[string]bool{}, routes: map[string]string{}}
		if ls.protocol == config.HTTPS {
			p.cfg.TLS, _ = ingress.LookupSSLPolicy(ingress.DefaultSSLPolicy)
		}
		t.ports[ls.port] = p
	}
	for _, c := range certs {
		if !p.certSeen[c.Ref] {
			p.certSeen[c.Ref] = true
			p.cfg.Certificates = append(p.cfg.Certificates, c)
		}
	}
}

// listeners returns the served ports in order, each with its routes as the router
// matches them, and fills in the Gateways' status.
func (t *translation) listeners() []config.Listener {
	out := make([]config.Listener, 0, len(t.ports))
	for _, p := range t.ports {
		sortByMatches(p.cfg.Routes)
		ingress.SortRoutes(p.cfg.Routes)
		out = append(out, p.cfg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	for _, g := range t.gatewayOrder {
		t.status.Gateways = append(t.status.Gateways, g.status(t.look))
	}
	sort.Slice(t.status.Gateways, func(i, j int) bool {
		a, b := t.status.Gateways[i], t.status.Gateways[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return out
}

// status is the Gateway's: Accepted unless no listener is valid, Programmed when one is
// served.
func (g *gatewayState) status(look *ingress.Lookup) config.GatewayStatus {
	st := config.GatewayStatus{Namespace: g.ns, Name: g.gw.Name, Class: string(g.gw.Spec.GatewayClassName),
		Generation: g.gw.Generation, Listeners: []config.ListenerStatus{}, Source: look.File("Gateway", g.gw.Namespace, g.gw.Name)}
	valid, served := 0, 0
	for i, ls := range g.listeners {
		cs := []config.StatusCondition{ls.accepted, ls.resolved, ls.program}
		if ls.conflict != nil {
			cs = append(cs, *ls.conflict)
		}
		st.Listeners = append(st.Listeners, config.ListenerStatus{Name: ls.name, Port: ls.port, Protocol: config.Protocol(g.gw.Spec.Listeners[i].Protocol),
			AttachedRoutes: ls.attached, SupportedKinds: ls.supported, Conditions: cs})
		if ls.accepted.Status {
			valid++
		}
		if ls.ok {
			served++
		}
	}
	accepted := cond("Accepted", true, "Accepted", "")
	if valid == 0 {
		accepted = cond("Accepted", false, "ListenersNotValid", "no listener is valid")
	}
	programmed := cond("Programmed", true, "Programmed", "")
	if served == 0 {
		programmed = cond("Programmed", false, "Invalid", "no listener is served")
	}
	st.Conditions = []config.StatusCondition{accepted, programmed}
	return st
}

// sortByMatches orders routes of the same host and path as the specification's
// precedence asks: a method match first, then the most header matches, then the most
// query parameter matches. The sort is stable, so ties keep the order they were added in
// (the oldest route first, then its rules in order); ingress.SortRoutes, stable too,
// then orders by host and path.
func sortByMatches(rs []config.Route) {
	count := func(r config.Route, f config.ConditionField) int {
		n := 0
		for _, c := range r.Conditions {
			if c.Field == f {
				n++
			}
		}
		return n
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ma, mb := count(a, config.FieldMethod), count(b, config.FieldMethod); ma != mb {
			return ma > mb
		}
		if ha, hb := count(a, config.FieldHTTPHeader), count(b, config.FieldHTTPHeader); ha != hb {
			return ha > hb
		}
		return count(a, config.FieldQueryString) > count(b, config.FieldQueryString)
	})
}
