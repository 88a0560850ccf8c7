package ingress

import (
	"encoding/json"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/glob"
)

// useAnnotation is the port name by which a path's backend names an actions annotation.
const useAnnotation = "use-annotation"

// ruleSet is an Ingress's actions and conditions annotations, read once, by the name
// (backend.service.name) that paths use them under. Names whose annotation is malformed
// map to nil: the error is reported once and the Ingress is not served.
type ruleSet struct {
	keys       []string // the annotations, sorted
	actions    map[string]*action
	conditions map[string][]config.Condition
	used       map[string]bool
}

// ruleName is the name an actions or conditions annotation key gives its rule.
func ruleName(k string) string {
	for _, p := range []string{AnnotationActionsPrefix, AnnotationConditionsPrefix, AnnotationMilvusConditionsPrefix} {
		if n, ok := strings.CutPrefix(k, p); ok {
			return n
		}
	}
	return ""
}

// isRuleAnnotation reports whether k is an actions or conditions annotation.
func isRuleAnnotation(k string) bool {
	return strings.HasPrefix(k, AnnotationActionsPrefix) || strings.HasPrefix(k, AnnotationConditionsPrefix) ||
		strings.HasPrefix(k, AnnotationMilvusConditionsPrefix)
}

// readRules parses the Ingress's actions and conditions annotations, in name order.
func (x *index) readRules(ns string, m map[string]string, s backendSettings, r *reporter) *ruleSet {
	a := annotations{m: m, r: r}
	rs := &ruleSet{actions: map[string]*action{}, conditions: map[string][]config.Condition{}, used: map[string]bool{}}
	for k := range m {
		if isRuleAnnotation(k) {
			rs.keys = append(rs.keys, k)
		}
	}
	sort.Strings(rs.keys)
	bad := map[string]bool{}
	for _, k := range rs.keys {
		name := ruleName(k)
		if strings.HasPrefix(k, AnnotationActionsPrefix) {
			rs.actions[name] = x.readAction(a, k, ns, s)
			continue
		}
		kinds := albKinds
		if strings.HasPrefix(k, AnnotationMilvusConditionsPrefix) {
			kinds = milvusKinds
		}
		cs, ok := parseConditions(a, k, kinds)
		rs.conditions[name] = append(rs.conditions[name], cs...)
		bad[name] = bad[name] || !ok
	}
	for name := range bad {
		if bad[name] {
			rs.conditions[name] = nil
		}
	}
	return rs
}

// reportUnused warns about actions and conditions no path uses: they change nothing.
func (rs *ruleSet) reportUnused(r *reporter) {
	for _, k := range rs.keys {
		switch name := ruleName(k); {
		case rs.used[name]:
		case strings.HasPrefix(k, AnnotationActionsPrefix):
			r.warnf(annotationPath(k), "not used: no path has backend service name %q with port name use-annotation", name)
		default:
			r.warnf(annotationPath(k), "not used: no path of spec.rules has backend service name %q (conditions do not apply to spec.defaultBackend)", name)
		}
	}
}

// pathRule is what one path routes to: a backend, weighted backends or a fixed response,
// under the conditions its name carries.
type pathRule struct {
	name     string // the rule's name when annotations apply to it, else ""
	route    config.Route
	backends []*config.Backend
	conds    []config.Condition
}

// pathRule resolves a path's backend (at p) against the Ingress's annotations: port name
// use-annotation takes the actions annotation of the service name, and the conditions
// annotations of that name apply (not to spec.defaultBackend: the ALB's default action
// has no conditions). It returns nil after reporting an error.
func (x *index) pathRule(pl *plan, ns string, b *networkingv1.IngressBackend, p *field.Path, isDefault bool) *pathRule {
	rs := pl.rules
	pr := &pathRule{}
	if b.Service != nil {
		name := b.Service.Name
		cs, hasConds := rs.conditions[name]
		if hasConds && !isDefault {
			rs.used[name] = true
			if cs == nil {
				return nil
			}
			pr.name, pr.conds = name, cs
		}
		if b.Service.Port.Name == useAnnotation {
			act, ok := rs.actions[name]
			if !ok {
				pl.r.errorf(p.Child("service", "port", "name"), "use-annotation needs the annotation %s%s", AnnotationActionsPrefix, name)
				return nil
			}
			if !isDefault || !hasConds {
				rs.used[name] = true
			}
			if act == nil {
				return nil
			}
			pr.name = name
			pr.route.Forward, pr.route.Fixed, pr.backends = act.forward, act.fixed, act.backends
			if len(act.forward) == 1 {
				pr.route.Backend, pr.route.Forward = act.forward[0].Backend, nil
			}
			return pr
		}
	}
	be := x.backend(ns, b, p, pl.s.backend, pl.r)
	if be == nil {
		return nil
	}
	pr.route.Backend, pr.backends = be.Key, []*config.Backend{be}
	return pr
}

// alternative is one host or path a rule matches, with the condition that narrows a
// wildcard down when the router's key is wider than the pattern.
type alternative struct {
	key      string
	pathType config.PathType
	narrow   *config.Condition
}

// routes is the rule for a path of host (or "", any host) and path: the ALB matches the
// rule's host OR any host-header value, and its path OR any path-pattern value (the AWS
// controller merges them into one condition each), so each pair becomes a route. A
// pattern with wildcards is routed under its literal beginning and checked in full by a
// condition. explicit says whether the path was written (an empty one matches only the
// path-pattern values, if there are any).
func (pr *pathRule) routes(host, path string, pt config.PathType, explicit bool) []config.Route {
	var hosts, paths []alternative
	var rest []config.Condition
	if host != "" {
		hosts = append(hosts, alternative{key: host})
	}
	if explicit {
		paths = append(paths, alternative{key: path, pathType: pt})
	}
	for _, c := range pr.conds {
		switch c.Field {
		case config.FieldHostHeader:
			for _, v := range c.Values {
				hosts = append(hosts, hostAlternative(v))
			}
		case config.FieldPathPattern:
			for _, v := range c.Values {
				paths = append(paths, pathAlternative(v))
			}
		default:
			rest = append(rest, c)
		}
	}
	if len(hosts) == 0 {
		hosts = []alternative{{key: ""}}
	}
	if len(paths) == 0 {
		paths = []alternative{{key: path, pathType: pt}}
	}
	var out []config.Route
	seen := map[routeKey]bool{}
	for _, h := range hosts {
		for _, p := range paths {
			rt := pr.route
			rt.Host, rt.Path, rt.PathType, rt.Rule = h.key, p.key, p.pathType, pr.name
			rt.Conditions = append([]config.Condition(nil), rest...)
			for _, n := range []*config.Condition{h.narrow, p.narrow} {
				if n != nil {
					rt.Conditions = append(rt.Conditions, *n)
				}
			}
			if k := routeKeyOf(rt, 0); !seen[k] {
				seen[k] = true
				out = append(out, rt)
			}
		}
	}
	return out
}

func hostAlternative(v string) alternative {
	if !strings.ContainsAny(v, "*?") {
		return alternative{key: v}
	}
	return alternative{key: "", narrow: &config.Condition{Field: config.FieldHostHeader, Values: []string{v}}}
}

// pathAlternative routes a path pattern: without wildcards it is an Exact path; with them,
// a Prefix route at its last whole path element before the first wildcard.
func pathAlternative(v string) alternative {
	if !strings.ContainsAny(v, "*?") {
		return alternative{key: v, pathType: config.PathExact}
	}
	lit := glob.LiteralPrefix(v)
	prefix := lit[:strings.LastIndexByte(lit, '/')+1]
	if prefix == "" {
		prefix = "/"
	}
	return alternative{key: prefix, pathType: config.PathPrefix,
		narrow: &config.Condition{Field: config.FieldPathPattern, Values: []string{v}}}
}

// routeKeyOf identifies a route on its listener port: host, path and conditions. Two
// routes with the same key cannot both be reached.
func routeKeyOf(rt config.Route, port int) routeKey {
	k := routeKey{port: port, host: rt.Host, pathType: rt.PathType, path: rt.Path}
	if len(rt.Conditions) > 0 {
		b, _ := json.Marshal(rt.Conditions)
		k.conditions = string(b)
	}
	return k
}
