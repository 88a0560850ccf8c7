package ingress

import (
	"maps"
	"slices"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// BackendSettings are the target group settings of backends that no Ingress names (the
// Gateway API's): protocol, health check, target group attributes and resilience, read
// from the same annotations as on an Ingress.
type BackendSettings struct{ s backendSettings }

// backendAnnotations are the annotations that set BackendSettings; on other objects than
// Ingresses, the rest of milvus-lb's and the ALB's have no effect.
var backendAnnotations = map[string]bool{
	AnnotationBackendProtocol: true, AnnotationHealthCheckType: true,
	AnnotationHealthCheckProtocol: true, AnnotationHealthCheckPort: true, AnnotationHealthCheckPath: true,
	AnnotationHealthCheckInterval: true, AnnotationHealthCheckTimeout: true,
	AnnotationHealthyThreshold: true, AnnotationUnhealthyThreshold: true,
	AnnotationSuccessCodes: true, AnnotationTargetGroupAttributes: true,
	AnnotationOutlierDetection: true, AnnotationMaxAttempts: true, AnnotationRetryBudget: true,
	AnnotationRetryBufferSize: true, AnnotationMaxInflight: true, AnnotationMaxInflightPerEndpoint: true,
}

// ParseBackendAnnotations reads the target group annotations among m, an object's (file,
// object name problems), for backends speaking proto, with the Ingress's rules and
// defaults: without any, the Milvus health check. Other annotations of the ALB's or
// milvus-lb's are reported as having no effect there.
func ParseBackendAnnotations(m map[string]string, proto config.BackendProtocol, file, object string) (BackendSettings, config.Problems) {
	r := &reporter{file: file, object: object}
	in := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		own := strings.HasPrefix(k, ALBAnnotationPrefix) || strings.HasPrefix(k, "milvus-lb.io/")
		if own && !backendAnnotations[k] {
			r.warnf(annotationPath(k), "annotation %s has no effect on %s: only the target group annotations (health check, target-group-attributes, resilience) apply, to the backends of its routes", k, strings.Fields(object)[0])
			continue
		}
		in[k] = m[k]
	}
	in[AnnotationBackendProtocolVersion] = string(proto)
	s := parseAnnotations(in, false, r)
	return BackendSettings{s.backend}, r.problems
}
