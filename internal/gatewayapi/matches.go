package gatewayapi

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// match is one route match as the router reads it: a path and the conditions besides.
type match struct {
	at         *field.Path
	path       string
	pathType   config.PathType
	conditions []config.Condition
}

// grpcMatches turns a GRPCRoute rule's matches into router matches (none: every call,
// path prefix /). gRPC and REST calls are told apart by their paths (a MilvusService
// method against /v2/vectordb/...), so a GRPCRoute adds no condition on content-type.
// A method match becomes a path: /service/method Exact, /service Prefix, or a path
// pattern for a method of any service.
func grpcMatches(rule *gwv1.GRPCRouteRule, at *field.Path, r *reporter) ([]match, bool) {
	if len(rule.Matches) == 0 {
		return []match{{at: at, path: "/", pathType: config.PathPrefix}}, true
	}
	ok := true
	var out []match
	for i, m := range rule.Matches {
		mat := at.Child("matches").Index(i)
		mm := match{at: mat, path: "/", pathType: config.PathPrefix}
		if mt := m.Method; mt != nil {
			if mt.Type != nil && *mt.Type != gwv1.GRPCMethodMatchExact {
				r.errorf(mat.Child("method", "type"), fmt.Sprintf("method match type %s is not supported: use Exact", *mt.Type))
				ok = false
				continue
			}
			svc, method := deref(mt.Service), deref(mt.Method)
			switch {
			case svc != "" && method != "":
				mm.path, mm.pathType = "/"+svc+"/"+method, config.PathExact
			case svc != "":
				mm.path = "/" + svc
			case method != "":
				mm.conditions = append(mm.conditions, config.Condition{Field: config.FieldPathPattern, Values: []string{"/*/" + method}})
			}
			if strings.ContainsAny(svc+method, "*?/") {
				r.errorf(mat.Child("method"), "service and method must not contain *, ? or /")
				ok = false
				continue
			}
		}
		hs := make([]header, len(m.Headers))
		for j, h := range m.Headers {
			hs[j] = header{typ: string(deref((*string)(h.Type))), name: string(h.Name), value: h.Value}
		}
		ok = headerConditions(hs, mat, r, &mm) && ok
		out = append(out, mm)
	}
	return out, ok
}

// httpMatches turns an HTTPRoute rule's matches into router matches (none: every
// request, path prefix /).
func httpMatches(rule *gwv1.HTTPRouteRule, at *field.Path, r *reporter) ([]match, bool) {
	if len(rule.Matches) == 0 {
		return []match{{at: at, path: "/", pathType: config.PathPrefix}}, true
	}
	ok := true
	var out []match
	for i, m := range rule.Matches {
		mat := at.Child("matches").Index(i)
		mm := match{at: mat, path: "/", pathType: config.PathPrefix}
		if p := m.Path; p != nil {
			if p.Value != nil {
				mm.path = *p.Value
			}
			switch {
			case p.Type == nil || *p.Type == gwv1.PathMatchPathPrefix:
			case *p.Type == gwv1.PathMatchExact:
				mm.pathType = config.PathExact
			default:
				r.errorf(mat.Child("path", "type"), fmt.Sprintf("path match type %s is not supported: use PathPrefix or Exact", *p.Type))
				ok = false
				continue
			}
			if !strings.HasPrefix(mm.path, "/") {
				r.errorf(mat.Child("path", "value"), fmt.Sprintf("invalid path %q: must start with /", mm.path))
				ok = false
				continue
			}
		}
		good := httpConditions(&m, mat, r, &mm)
		ok = ok && good
		out = append(out, mm)
	}
	return out, ok
}

// httpConditions adds an HTTPRoute match's headers, query parameters and method.
func httpConditions(m *gwv1.HTTPRouteMatch, at *field.Path, r *reporter, mm *match) bool {
	hs := make([]header, len(m.Headers))
	for j, h := range m.Headers {
		hs[j] = header{typ: string(deref((*string)(h.Type))), name: string(h.Name), value: h.Value}
	}
	ok := headerConditions(hs, at, r, mm)
	for j, q := range m.QueryParams {
		qat := at.Child("queryParams").Index(j)
		if q.Type != nil && *q.Type != gwv1.QueryParamMatchExact {
			r.errorf(qat.Child("type"), fmt.Sprintf("query parameter match type %s is not supported: use Exact", *q.Type))
			ok = false
			continue
		}
		mm.conditions = append(mm.conditions, config.Condition{Field: config.FieldQueryString, Exact: true, Query: []config.QueryValue{{Key: string(q.Name), Value: q.Value}}})
	}
	if m.Method != nil {
		mm.conditions = append(mm.conditions, config.Condition{Field: config.FieldMethod, Values: []string{string(*m.Method)}})
	}
	return ok
}

// header is a GRPCRoute's or an HTTPRoute's header match (typ "" is Exact).
type header struct{ typ, name, value string }

// headerConditions adds Exact header matches to mm: the name without case, the value
// as written (config.Condition.Exact). Other match types are refused.
func headerConditions(hs []header, at *field.Path, r *reporter, mm *match) bool {
	ok := true
	for j, h := range hs {
		hat := at.Child("headers").Index(j)
		if h.typ != "" && h.typ != "Exact" {
			r.errorf(hat.Child("type"), fmt.Sprintf("header match type %s is not supported: use Exact", h.typ))
			ok = false
			continue
		}
		mm.conditions = append(mm.conditions, config.Condition{Field: config.FieldHTTPHeader, Exact: true, Name: strings.ToLower(h.name), Values: []string{h.value}})
	}
	return ok
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
