package ingress

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
)

// awsControllerName is the spec.controller of the AWS Load Balancer Controller's
// IngressClasses; milvus-lb serves them too, so manifests written for it work unchanged.
const awsControllerName = "ingress.k8s.aws/alb"

// Translate turns objects into the model milvus-lb serves and the problems found on the
// way. It is pure: it reads only objs and opts (and, through opts.ReadFile, the trust-store
// files that mutual-authentication annotations name), and the same input always gives the
// same output.
//
// Only Ingresses of a served class are considered; others are listed in Model.Ingresses
// with Served false and no problem, as the AWS controller ignores them. An Ingress with an
// Error problem is not served at all (its routes are left out, nothing else is affected);
// when two Ingresses claim the same thing (a host and path on a port, a port for two
// groups), the one created first keeps it and the later one gets the error.
func Translate(objs Objects, opts Options) (*config.Model, config.Problems) {
	x := newIndex(objs)
	x.readFile = opts.ReadFile
	ings, problems := x.dedupe(byPrecedence(objs.Ingresses))
	plans, statuses, unserved := x.planAll(ings, newClassSet(objs.IngressClasses, opts))
	problems = append(problems, unserved...)

	b := assemble(plans)
	model := &config.Model{
		Listeners:  b.result(),
		Backends:   b.backends,
		RateLimits: rateLimitsOf(b.accepted),
		Caches:     cachesOf(b.accepted),
		Ingresses:  servedStatuses(ings, statuses, b.accepted),
	}
	for _, p := range plans {
		problems = append(problems, p.r.problems...)
		if cr := b.conflicts[p]; cr != nil {
			problems = append(problems, cr.problems...)
		}
	}
	problems.Sort()
	return model, problems
}

// byPrecedence is the Ingresses, nil ones left out, older first, then by name, as the
// ALB orders an IngressGroup's members when group.order is not set.
func byPrecedence(all []*networkingv1.Ingress) []*networkingv1.Ingress {
	ings := make([]*networkingv1.Ingress, 0, len(all))
	for _, ing := range all {
		if ing != nil {
			ings = append(ings, ing)
		}
	}
	sort.SliceStable(ings, func(i, j int) bool {
		a, b := ings[i], ings[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return nsName(a.Namespace, a.Name) < nsName(b.Namespace, b.Name)
	})
	return ings
}

// planAll plans the Ingresses of a class milvus-lb serves, and gives every Ingress its
// status (not served yet) and the others their problems.
func (x *index) planAll(ings []*networkingv1.Ingress, classes classSet) ([]*plan, map[*networkingv1.Ingress]*config.IngressStatus, config.Problems) {
	var plans []*plan
	var problems config.Problems
	statuses := map[*networkingv1.Ingress]*config.IngressStatus{}
	for _, ing := range ings {
		class, served := classes.classOf(ing)
		statuses[ing] = &config.IngressStatus{
			Namespace: namespaceOf(ing.Namespace),
			Name:      ing.Name,
			Class:     class,
			Hosts:     ruleHosts(ing),
			Ports:     []int{},
			Created:   ing.CreationTimestamp.UTC(),
			Source:    x.file("Ingress", ing.Namespace, ing.Name),
		}
		if served {
			plans = append(plans, x.plan(ing, class))
		} else {
			problems = append(problems, classes.unserved(ing, x.file("Ingress", ing.Namespace, ing.Name))...)
		}
	}
	return plans, statuses, problems
}

// servedStatuses marks the Ingresses whose plans were accepted as served, on the ports
// they got, and returns every Ingress's status by namespace and name.
func servedStatuses(ings []*networkingv1.Ingress, statuses map[*networkingv1.Ingress]*config.IngressStatus, accepted []*plan) []config.IngressStatus {
	for _, p := range accepted {
		st := statuses[p.ing]
		st.Served = true
		for _, lp := range p.s.ports {
			st.Ports = append(st.Ports, lp.Port)
		}
	}
	out := make([]config.IngressStatus, 0, len(ings))
	for _, ing := range ings {
		out = append(out, *statuses[ing])
	}
	sort.Slice(out, func(i, j int) bool {
		return nsName(out[i].Namespace, out[i].Name) < nsName(out[j].Namespace, out[j].Name)
	})
	return out
}

// dedupe keeps the first of Ingresses with the same namespace and name, in precedence
// order. The same Ingress twice (two files defining it) is a mistake the user must see.
func (x *index) dedupe(ings []*networkingv1.Ingress) ([]*networkingv1.Ingress, config.Problems) {
	var problems config.Problems
	seen := map[string]bool{}
	kept := ings[:0]
	for _, ing := range ings {
		if k := nsName(ing.Namespace, ing.Name); seen[k] {
			r := &reporter{file: x.file("Ingress", ing.Namespace, ing.Name), object: ObjectName("Ingress", namespaceOf(ing.Namespace), ing.Name)}
			r.errorf(nil, "defined more than once; only one definition is used")
			problems = append(problems, r.problems...)
			continue
		}
		seen[nsName(ing.Namespace, ing.Name)] = true
		kept = append(kept, ing)
	}
	return kept, problems
}

// assemble merges the plans without errors onto listeners. An HTTPS listener that ends up
// with no certificate cannot be served: every Ingress on it is rejected and the merge is
// redone without them, until the result is consistent (each round removes Ingresses, so
// it ends).
func assemble(plans []*plan) *builder {
	for {
		b := newBuilder()
		for _, p := range plans {
			if !p.r.failed() {
				b.add(p)
			}
		}
		bad := b.certless()
		if len(bad) == 0 {
			b.checkCoverage()
			return b
		}
		for _, l := range bad {
			for _, p := range l.plans {
				p.r.errorf(annotationPath(AnnotationListenPorts), "HTTPS port %d has no certificate: set %s or spec.tls", l.cfg.Port, AnnotationCertificateARN)
			}
		}
	}
}

// plan is one served Ingress, translated on its own, before merging.
type plan struct {
	ing      *networkingv1.Ingress
	key      string // ns/name
	r        *reporter
	s        settings
	certs    []certificate
	mtls     map[int]*config.MutualTLS // by port
	routes   []plannedRoute
	backends []plannedBackend
	hosts    []plannedHost
	rules    *ruleSet // actions and conditions annotations (rules.go)
	limits   []config.RateLimit
	cache    *config.Cache // milvus-lb.io/cache; nil: off
}

type plannedRoute struct {
	config.Route
	field *field.Path
}

type plannedBackend struct {
	*config.Backend
	field *field.Path // where the Ingress first references it
}

type plannedHost struct {
	host  string
	field *field.Path
}

// plan translates one Ingress: annotations, certificates, rules and backends.
func (x *index) plan(ing *networkingv1.Ingress, class string) *plan {
	ns := namespaceOf(ing.Namespace)
	p := &plan{
		ing: ing,
		key: ns + "/" + ing.Name,
		r: &reporter{
			file:   x.file("Ingress", ing.Namespace, ing.Name),
			object: ObjectName("Ingress", ns, ing.Name),
		},
	}
	p.s = parseAnnotations(ing.Annotations, len(ing.Spec.TLS) > 0, p.r)
	if len(p.s.certARNs) > 0 || len(ing.Spec.TLS) > 0 {
		p.certs = x.certificates(ing, p.s.certARNs, p.r)
	}
	p.mtls = resolveMutualAuth(p.s.mtls, p.r.file, x.readFile, p.r)

	p.rules = x.readRules(ns, ing.Annotations, p.s.backend, p.r)
	p.limits = parseRateLimits(annotations{m: ing.Annotations, r: p.r})
	p.cache = parseCache(annotations{m: ing.Annotations, r: p.r})
	x.planRules(p, ing, ns)
	x.applyPolicies(p, annotations{m: ing.Annotations, r: p.r}, ns)
	p.rules.reportUnused(p.r)
	if len(p.routes) == 0 && !p.r.failed() {
		p.r.warnf(field.NewPath("spec"), "no rules and no defaultBackend: nothing to serve")
	}
	return p
}

// planRules adds the routes and backends of ing's rules and of its default backend to
// p, and its hosts.
func (x *index) planRules(p *plan, ing *networkingv1.Ingress, ns string) {
	a := routeAdder{p: p, seen: map[routeKey]*field.Path{}, seenBackend: map[string]bool{}}
	seenHost := map[string]bool{}
	for i, rule := range ing.Spec.Rules {
		rp := field.NewPath("spec", "rules").Index(i)
		host, ok := normalizeHost(rule.Host, rp.Child("host"), p.r)
		if !ok {
			continue
		}
		if host != "" && !seenHost[host] {
			seenHost[host] = true
			p.hosts = append(p.hosts, plannedHost{host, rp.Child("host")})
		}
		if rule.HTTP == nil {
			p.r.warnf(rp, "rule has no http paths; ignored")
			continue
		}
		for j := range rule.HTTP.Paths {
			hp := &rule.HTTP.Paths[j]
			pp := rp.Child("http", "paths").Index(j)
			path, pt, okPath := normalizePath(hp, pp, p.r)
			pr := x.pathRule(p, ns, &hp.Backend, pp.Child("backend"), false)
			if okPath && pr != nil {
				a.add(pr, host, path, pt, hp.Path != "", pp, pp.Child("backend", "service", "name"))
			}
		}
	}
	if db := ing.Spec.DefaultBackend; db != nil {
		dp := field.NewPath("spec", "defaultBackend")
		if pr := x.pathRule(p, ns, db, dp, true); pr != nil {
			a.add(pr, "", "/", config.PathPrefix, true, dp, dp.Child("service", "name"))
		}
	}
}

// routeAdder adds path rules' routes and backends to a plan, each once: a route seen
// before (the same host, path, path type and conditions) is warned about and left out.
type routeAdder struct {
	p           *plan
	seen        map[routeKey]*field.Path
	seenBackend map[string]bool
}

// add adds pr's routes for host and path (at: the path's field, beAt: its backend's).
func (a *routeAdder) add(pr *pathRule, host, path string, pt config.PathType, explicit bool, at, beAt *field.Path) {
	p := a.p
	for _, rt := range pr.routes(host, path, pt, explicit) {
		k := routeKeyOf(rt, 0)
		if first, dup := a.seen[k]; dup {
			p.r.warnf(at, "duplicate of %s (same host, path, path type and conditions); ignored", first)
			continue
		}
		a.seen[k] = at
		rt.Ingress = p.key
		p.routes = append(p.routes, plannedRoute{Route: rt, field: at})
	}
	for _, be := range pr.backends {
		if !a.seenBackend[be.Key] {
			a.seenBackend[be.Key] = true
			p.backends = append(p.backends, plannedBackend{Backend: be, field: beAt})
		}
	}
}

// normalizeHost lower-cases and validates a rule's host ("" means any host).
func normalizeHost(h string, at *field.Path, r *reporter) (string, bool) {
	if h == "" {
		return "", true
	}
	h = strings.ToLower(h)
	var errs []string
	if strings.HasPrefix(h, "*.") {
		errs = validation.IsWildcardDNS1123Subdomain(h)
	} else {
		errs = validation.IsDNS1123Subdomain(h)
	}
	if len(errs) > 0 {
		r.errorf(at, "invalid host %q: %s", h, strings.Join(errs, "; "))
		return "", false
	}
	return h, true
}

// normalizePath validates a path and returns it with its type: ImplementationSpecific is
// matched as Prefix. For it the ALB accepts its own path patterns; a trailing "*" (as in
// "/v2/vectordb/*") is the common case and means the same prefix, other wildcards are
// refused.
func normalizePath(hp *networkingv1.HTTPIngressPath, at *field.Path, r *reporter) (string, config.PathType, bool) {
	path := hp.Path
	pt := config.PathImplementationSpecific
	if hp.PathType != nil {
		pt = config.PathType(*hp.PathType)
	}
	switch pt {
	case config.PathExact, config.PathPrefix:
	case config.PathImplementationSpecific:
		if path == "" {
			path = "/"
		}
		path = strings.TrimSuffix(path, "*")
		if strings.ContainsAny(path, "*?") {
			r.errorf(at.Child("path"), "invalid path %q: only a trailing * is supported", hp.Path)
			return "", "", false
		}
		pt = config.PathPrefix
	default:
		r.errorf(at.Child("pathType"), "unknown pathType %q: must be Exact, Prefix or ImplementationSpecific", pt)
		return "", "", false
	}
	if !strings.HasPrefix(path, "/") {
		r.errorf(at.Child("path"), "invalid path %q: must start with /", hp.Path)
		return "", "", false
	}
	return path, pt, true
}

// ruleHosts lists the Ingress's distinct non-empty hosts, as `kubectl get ingress` shows.
func ruleHosts(ing *networkingv1.Ingress) []string {
	hosts := []string{}
	seen := map[string]bool{}
	for _, r := range ing.Spec.Rules {
		if r.Host != "" && !seen[r.Host] {
			seen[r.Host] = true
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}

// classSet decides which Ingresses are served.
type classSet struct {
	served       map[string]bool
	defaultClass string
	// others are the IngressClasses of other controllers: their Ingresses are left
	// alone in silence (unserved in classes.go).
	others map[string]bool
}

// newClassSet serves the configured class names (an IngressClass object is not needed for
// them), plus every IngressClass whose controller is milvus-lb's or the AWS controller's.
// Of those, one marked default also serves Ingresses that name no class.
func newClassSet(ics []*networkingv1.IngressClass, opts Options) classSet {
	cs := classSet{served: map[string]bool{}, others: map[string]bool{}}
	names := opts.Classes
	if len(names) == 0 {
		names = DefaultClasses
	}
	for _, n := range names {
		cs.served[n] = true
	}
	var defaults []string
	for _, ic := range ics {
		if ic == nil {
			continue
		}
		if ic.Spec.Controller != ControllerName && ic.Spec.Controller != awsControllerName {
			cs.others[ic.Name] = true
			continue
		}
		cs.served[ic.Name] = true
		if ic.Annotations[defaultClassAnnotation] == "true" {
			defaults = append(defaults, ic.Name)
		}
	}
	// Kubernetes allows several default classes; pick one by name so the choice is stable.
	sort.Strings(defaults)
	if len(defaults) > 0 {
		cs.defaultClass = defaults[0]
	}
	return cs
}

// classOf returns the Ingress's class (spec.ingressClassName, else the legacy annotation,
// else the served default class) and whether it is served.
func (cs classSet) classOf(ing *networkingv1.Ingress) (string, bool) {
	if n := ing.Spec.IngressClassName; n != nil && *n != "" {
		return *n, cs.served[*n]
	}
	if n := ing.Annotations[legacyClassAnnotation]; n != "" {
		return n, cs.served[n]
	}
	if cs.defaultClass != "" {
		return cs.defaultClass, true
	}
	return "", false
}

// index holds the objects by name for lookups.
type index struct {
	services        map[string]*corev1.Service
	slices          map[string][]*discoveryv1.EndpointSlice // by ns/service-name label
	legacyEndpoints map[string]*corev1.Endpoints
	secrets         map[string]*corev1.Secret
	byARN           map[string][]*corev1.Secret
	files           map[string]string
	certStore       string
	readFile        ReadFileFunc
}

func newIndex(objs Objects) *index {
	x := &index{
		services:        map[string]*corev1.Service{},
		slices:          map[string][]*discoveryv1.EndpointSlice{},
		legacyEndpoints: map[string]*corev1.Endpoints{},
		secrets:         map[string]*corev1.Secret{},
		byARN:           map[string][]*corev1.Secret{},
		files:           objs.Files,
		certStore:       objs.CertificateStore,
	}
	for _, s := range objs.Services {
		if s != nil {
			x.services[nsName(s.Namespace, s.Name)] = s
		}
	}
	for _, sl := range objs.EndpointSlices {
		if sl == nil {
			continue
		}
		if svc := sl.Labels[discoveryv1.LabelServiceName]; svc != "" {
			k := nsName(sl.Namespace, svc)
			x.slices[k] = append(x.slices[k], sl)
		}
	}
	for _, sls := range x.slices {
		sort.Slice(sls, func(i, j int) bool { return sls[i].Name < sls[j].Name })
	}
	for _, e := range objs.Endpoints {
		if e != nil {
			x.legacyEndpoints[nsName(e.Namespace, e.Name)] = e
		}
	}
	for _, s := range objs.Secrets {
		if s == nil {
			continue
		}
		x.secrets[nsName(s.Namespace, s.Name)] = s
		if arn := strings.TrimSpace(s.Annotations[certs.CertificateARNAnnotation]); arn != "" {
			x.byARN[arn] = append(x.byARN[arn], s)
		}
	}
	for _, ss := range x.byARN {
		sort.Slice(ss, func(i, j int) bool {
			return nsName(ss[i].Namespace, ss[i].Name) < nsName(ss[j].Namespace, ss[j].Name)
		})
	}
	return x
}

// file is the file an object came from, if any. Sources may key Files with the namespace
// as written (empty for objects without one) or as defaulted; both are tried.
func (x *index) file(kind, ns, name string) string {
	if f, ok := x.files[ObjectName(kind, ns, name)]; ok {
		return f
	}
	return x.files[ObjectName(kind, namespaceOf(ns), name)]
}

// namespaceOf defaults an empty namespace as kubectl does for objects that omit it.
func namespaceOf(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func nsName(ns, name string) string { return namespaceOf(ns) + "/" + name }
