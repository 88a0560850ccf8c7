package ingress

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// ALBAnnotationPrefix is the prefix of the AWS Load Balancer Controller's annotations.
const ALBAnnotationPrefix = "alb.ingress.kubernetes.io/"

// The alb.ingress.kubernetes.io/* annotations milvus-lb honours. Their meaning and defaults
// follow the AWS Load Balancer Controller (docs/guide/ingress/annotations.md).
const (
	AnnotationScheme                 = ALBAnnotationPrefix + "scheme"
	AnnotationListenPorts            = ALBAnnotationPrefix + "listen-ports"
	AnnotationCertificateARN         = ALBAnnotationPrefix + "certificate-arn"
	AnnotationSSLPolicy              = ALBAnnotationPrefix + "ssl-policy"
	AnnotationSSLRedirect            = ALBAnnotationPrefix + "ssl-redirect"
	AnnotationGroupName              = ALBAnnotationPrefix + "group.name"
	AnnotationBackendProtocol        = ALBAnnotationPrefix + "backend-protocol"
	AnnotationBackendProtocolVersion = ALBAnnotationPrefix + "backend-protocol-version"
	AnnotationTargetType             = ALBAnnotationPrefix + "target-type"
	AnnotationHealthCheckProtocol    = ALBAnnotationPrefix + "healthcheck-protocol"
	AnnotationHealthCheckPort        = ALBAnnotationPrefix + "healthcheck-port"
	AnnotationHealthCheckPath        = ALBAnnotationPrefix + "healthcheck-path"
	AnnotationHealthCheckInterval    = ALBAnnotationPrefix + "healthcheck-interval-seconds"
	AnnotationHealthCheckTimeout     = ALBAnnotationPrefix + "healthcheck-timeout-seconds"
	AnnotationHealthyThreshold       = ALBAnnotationPrefix + "healthy-threshold-count"
	AnnotationUnhealthyThreshold     = ALBAnnotationPrefix + "unhealthy-threshold-count"
	AnnotationSuccessCodes           = ALBAnnotationPrefix + "success-codes"
	AnnotationTargetGroupAttributes  = ALBAnnotationPrefix + "target-group-attributes"
)

// AnnotationHealthCheckType is milvus-lb's own annotation choosing the active check
// explicitly: milvus | grpc-health | grpc | http | none (see config.HealthCheckKind).
const AnnotationHealthCheckType = "milvus-lb.io/healthcheck-type"

// Annotations of the Kubernetes Ingress API itself.
const (
	legacyClassAnnotation  = "kubernetes.io/ingress.class"
	defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
)

// SupportedAnnotations lists every annotation translation reads, sorted, for documentation
// and for `validate`.
func SupportedAnnotations() []string {
	out := []string{AnnotationHealthCheckType}
	for a := range supported {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

var supported = map[string]bool{
	AnnotationScheme: true, AnnotationListenPorts: true, AnnotationCertificateARN: true,
	AnnotationSSLPolicy: true, AnnotationSSLRedirect: true, AnnotationGroupName: true,
	AnnotationBackendProtocol: true, AnnotationBackendProtocolVersion: true,
	AnnotationTargetType: true, AnnotationHealthCheckProtocol: true,
	AnnotationHealthCheckPort: true, AnnotationHealthCheckPath: true,
	AnnotationHealthCheckInterval: true, AnnotationHealthCheckTimeout: true,
	AnnotationHealthyThreshold: true, AnnotationUnhealthyThreshold: true,
	AnnotationSuccessCodes: true, AnnotationTargetGroupAttributes: true,
	AnnotationMutualAuthentication: true,

	AnnotationOutlierDetection: true, AnnotationMaxAttempts: true, AnnotationRetryBudget: true, AnnotationRetryBufferSize: true, AnnotationMaxInflight: true, AnnotationMaxInflightPerEndpoint: true,
	AnnotationCache: true,
}

// ALB defaults for target group health checks and attributes.
const (
	defaultInterval            = 15 * time.Second
	defaultTimeout             = 5 * time.Second
	defaultThreshold           = 2
	defaultDeregistrationDelay = 300 * time.Second
	trafficPort                = "traffic-port"
	// The ALB's gRPC health check calls a method no server implements and counts
	// UNIMPLEMENTED (12) as healthy (aws-load-balancer-controller PR #1698).
	defaultGRPCHealthPath  = "/AWS.ALB/healthcheck"
	defaultGRPCHealthCodes = "12"
	defaultHTTPHealthPath  = "/"
	defaultHTTPHealthCodes = "200"
)

// reporter collects the problems of one object.
type reporter struct {
	file, object string
	problems     config.Problems
}

func (r *reporter) add(sev config.Severity, p *field.Path, format string, args ...any) {
	f := ""
	if p != nil {
		f = p.String()
	}
	r.problems = append(r.problems, config.Problem{
		Severity: sev, File: r.file, Object: r.object, Field: f,
		Message: fmt.Sprintf(format, args...),
	})
}

func (r *reporter) errorf(p *field.Path, format string, args ...any) {
	r.add(config.Error, p, format, args...)
}

func (r *reporter) warnf(p *field.Path, format string, args ...any) {
	r.add(config.Warning, p, format, args...)
}

func (r *reporter) failed() bool {
	for _, p := range r.problems {
		if p.Severity == config.Error {
			return true
		}
	}
	return false
}

// annotationPath is the field path problems give for an annotation.
func annotationPath(name string) *field.Path {
	return field.NewPath("metadata", "annotations").Key(name)
}

// listenPort is one entry of listen-ports.
type listenPort struct {
	Port     int
	Protocol config.Protocol
}

// settings are an Ingress's parsed annotations.
type settings struct {
	ports          []listenPort // sorted by port; nil until defaulted by the caller
	portsExplicit  bool
	certARNs       []string
	sslPolicy      string // "" when not set
	sslRedirect    int
	group          string
	backend        backendSettings
	healthExplicit bool
	mtls           []mtlsPort // HTTPS ports with mutual authentication on (mtls.go)
}

// backendSettings are the target-group-level policies an Ingress gives its backends.
type backendSettings struct {
	Protocol            config.BackendProtocol
	TLS                 bool
	Algorithm           config.Algorithm
	HealthCheck         config.HealthCheck
	DeregistrationDelay config.Duration
	SlowStart           config.Duration
	Resilience          config.Resilience
}

// annotations reads one object's annotations, reporting problems against their names.
type annotations struct {
	m map[string]string
	r *reporter
}

func (a annotations) get(name string) (string, bool) {
	v, ok := a.m[name]
	return strings.TrimSpace(v), ok
}

func (a annotations) errorf(name, format string, args ...any) {
	a.r.errorf(annotationPath(name), format, args...)
}

// intIn parses an integer annotation within [lo, hi]; def when absent or invalid.
func (a annotations) intIn(name string, lo, hi, def int) int {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		a.errorf(name, "must be an integer from %d to %d, got %q", lo, hi, v)
		return def
	}
	return n
}

// oneOf returns the annotation's value if it is one of allowed (case-sensitive, as the
// ALB is), def when absent, and reports anything else.
func (a annotations) oneOf(name, def string, allowed ...string) string {
	v, ok := a.get(name)
	if !ok {
		return def
	}
	for _, s := range allowed {
		if v == s {
			return v
		}
	}
	a.errorf(name, "invalid value %q: must be one of %s", v, strings.Join(allowed, ", "))
	return def
}

// parseAnnotations reads every annotation the Ingress carries. hasTLS says whether the
// Ingress has spec.tls, which makes HTTPS 443 the default listener.
func parseAnnotations(m map[string]string, hasTLS bool, r *reporter) settings {
	a := annotations{m: m, r: r}
	var s settings

	reportUnsupported(m, r)

	// scheme only decides, on AWS, whether the ALB gets public addresses. milvus-lb binds
	// where it is told, so the value is only validated.
	a.oneOf(AnnotationScheme, "internal", "internal", "internet-facing")
	// target-type ip balances across the Service's endpoints (pod IPs). With instance, the
	// ALB would send traffic to every node's NodePort and kube-proxy would pick a pod; a
	// milvus-lb process has no nodes of its own, so instance uses the same endpoints as ip.
	a.oneOf(AnnotationTargetType, "instance", "instance", "ip")

	if v, ok := a.get(AnnotationCertificateARN); ok {
		for _, arn := range strings.Split(v, ",") {
			if arn = strings.TrimSpace(arn); arn != "" {
				s.certARNs = append(s.certARNs, arn)
			}
		}
	}
	s.ports, s.portsExplicit = parseListenPorts(a, len(s.certARNs) > 0 || hasTLS)
	if len(s.certARNs) > 0 && len(s.ports) > 0 && !slices.ContainsFunc(s.ports, func(p listenPort) bool { return p.Protocol == config.HTTPS }) {
		r.warnf(annotationPath(AnnotationCertificateARN), "unused: listen-ports declares no HTTPS port")
	}

	s.mtls = checkMutualAuthPorts(parseMutualAuth(a), s.ports, r)

	if v, ok := a.get(AnnotationSSLPolicy); ok {
		if _, known := LookupSSLPolicy(v); known {
			s.sslPolicy = v
		} else {
			a.errorf(AnnotationSSLPolicy, "unknown ssl-policy %q; known policies: %s", v, strings.Join(SSLPolicies(), ", "))
		}
	}
	if _, ok := a.get(AnnotationSSLRedirect); ok {
		s.sslRedirect = a.intIn(AnnotationSSLRedirect, 1, 65535, 0)
		for _, p := range s.ports {
			if p.Port == s.sslRedirect && p.Protocol == config.HTTP {
				a.errorf(AnnotationSSLRedirect, "port %d is an HTTP listener in listen-ports; ssl-redirect must name an HTTPS port", p.Port)
			}
		}
	}
	if v, ok := a.get(AnnotationGroupName); ok {
		if errs := validation.IsDNS1123Subdomain(v); len(v) > 63 || len(errs) > 0 {
			a.errorf(AnnotationGroupName, "invalid group name %q: must be at most 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", v)
		} else {
			s.group = v
		}
	}

	b := &s.backend
	b.Protocol = config.BackendProtocol(a.oneOf(AnnotationBackendProtocolVersion, string(config.BackendHTTP1),
		string(config.BackendGRPC), string(config.BackendHTTP2), string(config.BackendHTTP1)))
	b.TLS = a.oneOf(AnnotationBackendProtocol, "HTTP", "HTTP", "HTTPS") == "HTTPS"
	b.Algorithm = config.RoundRobin
	b.DeregistrationDelay = config.Duration(defaultDeregistrationDelay)
	parseTargetGroupAttributes(a, b)
	b.Resilience = parseResilience(a)
	b.HealthCheck, s.healthExplicit = parseHealthCheck(a, b.Protocol, b.TLS)
	return s
}

// reportUnsupported warns, by name, about every annotation under the ALB prefix (or our
// own) that translation does not read, and about every other annotation that looks like a
// misspelling of one it reads (nearmiss.go): the user must not believe it has an effect.
func reportUnsupported(m map[string]string, r *reporter) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		suggest := ""
		if m := nearMiss(k); m != "" {
			suggest = "; did you mean " + m + "?"
		}
		switch {
		case supported[k] || k == AnnotationHealthCheckType || isRuleAnnotation(k) || k == AnnotationRateLimits || k == AnnotationStandby || k == AnnotationMirror:
		case strings.HasPrefix(k, ALBAnnotationPrefix):
			r.warnf(annotationPath(k), "annotation %s is not supported and is ignored%s", k, suggest)
		case strings.HasPrefix(k, "milvus-lb.io/"):
			r.warnf(annotationPath(k), "annotation %s is not known and is ignored%s", k, suggest)
		case suggest != "":
			r.warnf(annotationPath(k), "annotation %s is ignored%s", k, suggest)
		default:
			if p := nearMissPrefix(k); p != "" {
				r.warnf(annotationPath(k), "annotation %s is ignored; did you mean the prefix %s?", k, p)
			}
		}
	}
}

// parseListenPorts reads listen-ports, e.g. '[{"HTTP":80},{"HTTPS":443}]'. Without the
// annotation the AWS controller listens on HTTPS 443 when the Ingress has certificates and
// on HTTP 80 otherwise; so does milvus-lb.
func parseListenPorts(a annotations, hasCerts bool) ([]listenPort, bool) {
	v, ok := a.get(AnnotationListenPorts)
	if !ok {
		if hasCerts {
			return []listenPort{{443, config.HTTPS}}, false
		}
		return []listenPort{{80, config.HTTP}}, false
	}
	var entries []map[string]int64
	if err := json.Unmarshal([]byte(v), &entries); err != nil {
		a.errorf(AnnotationListenPorts, `invalid listen-ports %q: want a JSON list such as [{"HTTP":80},{"HTTPS":443}]: %v`, v, err)
		return nil, true
	}
	if len(entries) == 0 {
		a.errorf(AnnotationListenPorts, "listen-ports %q declares no port", v)
		return nil, true
	}
	byPort := map[int]config.Protocol{}
	bad := false
	for _, e := range entries {
		protos := make([]string, 0, len(e))
		for p := range e {
			protos = append(protos, p)
		}
		sort.Strings(protos)
		for _, proto := range protos {
			port := e[proto]
			if proto != string(config.HTTP) && proto != string(config.HTTPS) {
				a.errorf(AnnotationListenPorts, "unknown protocol %q for port %d: must be HTTP or HTTPS", proto, port)
				bad = true
				continue
			}
			if port < 1 || port > 65535 {
				a.errorf(AnnotationListenPorts, "port %d of %s is out of range 1-65535", port, proto)
				bad = true
				continue
			}
			if prev, dup := byPort[int(port)]; dup && prev != config.Protocol(proto) {
				a.errorf(AnnotationListenPorts, "port %d is declared both %s and %s", port, prev, proto)
				bad = true
				continue
			}
			byPort[int(port)] = config.Protocol(proto)
		}
	}
	if bad {
		return nil, true
	}
	ports := make([]listenPort, 0, len(byPort))
	for p, proto := range byPort {
		ports = append(ports, listenPort{p, proto})
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Port < ports[j].Port })
	return ports, true
}

// parseTargetGroupAttributes reads target-group-attributes, a comma-separated list of
// key=value pairs, into b. Attributes with no meaning here are reported as ignored.
func parseTargetGroupAttributes(a annotations, b *backendSettings) {
	const name = AnnotationTargetGroupAttributes
	for key, val := range attributes(a, name) {
		switch key {
		case "load_balancing.algorithm.type":
			switch alg := config.Algorithm(val); alg {
			case config.RoundRobin, config.LeastOutstandingRequests, config.WeightedRandom:
				b.Algorithm = alg
			default:
				a.errorf(name, "invalid %s %q: must be one of round_robin, least_outstanding_requests, weighted_random", key, val)
			}
		case "deregistration_delay.timeout_seconds":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 3600 {
				a.errorf(name, "invalid %s %q: must be an integer from 0 to 3600", key, val)
				continue
			}
			b.DeregistrationDelay = config.Duration(time.Duration(n) * time.Second)
		case "slow_start.duration_seconds":
			n, err := strconv.Atoi(val)
			if err != nil || (n != 0 && (n < 30 || n > 900)) {
				a.errorf(name, "invalid %s %q: must be 0 (off) or an integer from 30 to 900", key, val)
				continue
			}
			b.SlowStart = config.Duration(time.Duration(n) * time.Second)
		default:
			a.r.warnf(annotationPath(name), "target group attribute %s is not supported and is ignored", key)
		}
	}
}

// parseHealthCheck builds the active health check from the healthcheck annotations.
//
// Without any of them, milvus-lb checks Milvus readiness with the CheckHealth RPC, which
// the ALB cannot do (its default gRPC check, /AWS.ALB/healthcheck expecting code 12 since
// aws-load-balancer-controller PR #1698, passes as soon as anything speaks gRPC). The
// annotations that say *what* to check (protocol, port, path, success-codes) switch to
// the ALB's semantics: a gRPC backend gets the ALB's gRPC check, unless healthcheck-port
// names another port, which can only be an HTTP endpoint such as Milvus' /healthz on
// 9091; other backends get an HTTP check. The timing annotations alone keep the kind.
// milvus-lb.io/healthcheck-type overrides the choice.
func parseHealthCheck(a annotations, proto config.BackendProtocol, backendTLS bool) (config.HealthCheck, bool) {
	hc := config.HealthCheck{
		Port:               trafficPort,
		Interval:           config.Duration(time.Duration(a.intIn(AnnotationHealthCheckInterval, 5, 300, int(defaultInterval/time.Second))) * time.Second),
		Timeout:            config.Duration(time.Duration(a.intIn(AnnotationHealthCheckTimeout, 2, 120, int(defaultTimeout/time.Second))) * time.Second),
		HealthyThreshold:   a.intIn(AnnotationHealthyThreshold, 2, 10, defaultThreshold),
		UnhealthyThreshold: a.intIn(AnnotationUnhealthyThreshold, 2, 10, defaultThreshold),
	}
	if hc.Timeout >= hc.Interval {
		a.errorf(AnnotationHealthCheckTimeout, "timeout %v must be shorter than the interval %v", hc.Timeout.D(), hc.Interval.D())
	}

	portSet := false
	if v, ok := a.get(AnnotationHealthCheckPort); ok && v != trafficPort {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
			a.errorf(AnnotationHealthCheckPort, "invalid port %q: must be traffic-port or an integer from 1 to 65535", v)
		} else {
			hc.Port, portSet = strconv.Itoa(n), true
		}
	}
	hcProto, protoSet := a.get(AnnotationHealthCheckProtocol)
	if protoSet {
		hcProto = a.oneOf(AnnotationHealthCheckProtocol, "HTTP", "HTTP", "HTTPS")
	}
	path, pathSet := a.get(AnnotationHealthCheckPath)
	if pathSet && !strings.HasPrefix(path, "/") {
		a.errorf(AnnotationHealthCheckPath, "invalid path %q: must start with /", path)
	}
	codes, codesSet := a.get(AnnotationSuccessCodes)
	shapeSet := portSet || protoSet || pathSet || codesSet
	if _, ok := a.get(AnnotationHealthCheckPort); ok {
		shapeSet = true
	}

	// TLS: as written, else the backend's own TLS when checking the traffic port.
	if protoSet {
		hc.TLS = hcProto == "HTTPS"
	} else {
		hc.TLS = backendTLS && !portSet
	}

	kind, kindSet, ok := healthCheckKind(a, proto, portSet, shapeSet)
	if !ok {
		return hc, true // the Ingress is not served; more findings would be noise
	}
	hc.Kind = kind

	pathSet = checkDetails(a, &hc, codes, codesSet) && pathSet
	if pathSet && strings.HasPrefix(path, "/") {
		hc.Path = path
	}
	return hc, kindSet || shapeSet
}

// healthCheckKind is the check the annotations ask for: as written, else the ALB's choice
// for the shape they give (port, protocol, path, codes), else Milvus's CheckHealth. ok is
// false when the kind written is not one.
func healthCheckKind(a annotations, proto config.BackendProtocol, portSet, shapeSet bool) (kind config.HealthCheckKind, set, ok bool) {
	explicit, set := a.get(AnnotationHealthCheckType)
	switch {
	case set:
		switch k := config.HealthCheckKind(explicit); k {
		case config.CheckMilvus, config.CheckGRPCHealth, config.CheckGRPC, config.CheckHTTP, config.CheckNone:
			return k, true, true
		}
		a.errorf(AnnotationHealthCheckType, "invalid value %q: must be one of milvus, grpc-health, grpc, http, none", explicit)
		return "", true, false
	case !shapeSet:
		return config.CheckMilvus, false, true
	case proto == config.BackendGRPC && !portSet:
		return config.CheckGRPC, false, true
	}
	return config.CheckHTTP, false, true
}

// checkDetails sets the path and success codes of hc's kind (codes as written when
// codesSet) and reports whether the kind takes a path; the kinds that judge by the reply
// body (milvus, grpc-health) or not at all (none) warn about the annotations they ignore.
func checkDetails(a annotations, hc *config.HealthCheck, codes string, codesSet bool) (usesPath bool) {
	switch hc.Kind {
	case config.CheckGRPC:
		hc.Path, hc.SuccessCodes = defaultGRPCHealthPath, defaultGRPCHealthCodes
		if codesSet {
			hc.SuccessCodes = parseSuccessCodes(a, codes, 0, 99, "gRPC status codes")
		}
		return true
	case config.CheckHTTP:
		hc.Path, hc.SuccessCodes = defaultHTTPHealthPath, defaultHTTPHealthCodes
		if codesSet {
			hc.SuccessCodes = parseSuccessCodes(a, codes, 200, 499, "HTTP status codes")
		}
		return true
	}
	for _, n := range []string{AnnotationHealthCheckPath, AnnotationSuccessCodes} {
		if _, ok := a.get(n); ok {
			a.r.warnf(annotationPath(n), "ignored: health check type %s does not use it", hc.Kind)
		}
	}
	return false
}

// parseSuccessCodes validates "200", "200,202", "200-299" (or gRPC codes) within [lo, hi]
// and returns it without spaces; on error it reports and returns the empty string.
func parseSuccessCodes(a annotations, v string, lo, hi int, what string) string {
	var parts []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		first, last, isRange := strings.Cut(part, "-")
		from, err1 := strconv.Atoi(strings.TrimSpace(first))
		to, err2 := from, error(nil)
		if isRange {
			to, err2 = strconv.Atoi(strings.TrimSpace(last))
		}
		if err1 != nil || err2 != nil || from < lo || to > hi || from > to {
			a.errorf(AnnotationSuccessCodes, "invalid success-codes %q: want %s from %d to %d, as a list (200,202) or a range (200-299)", v, what, lo, hi)
			return ""
		}
		if isRange {
			parts = append(parts, fmt.Sprintf("%d-%d", from, to))
		} else {
			parts = append(parts, strconv.Itoa(from))
		}
	}
	return strings.Join(parts, ",")
}
