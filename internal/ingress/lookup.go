package ingress

import (
	"crypto/x509"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Lookup is translation's view of the objects that every source kind refers to: Services
// with their endpoints, and TLS Secrets. internal/gatewayapi resolves a Gateway API
// backendRef or certificateRef through it, so both resolve exactly as an Ingress's do.
type Lookup struct{ x *index }

// NewLookup indexes objs.
func NewLookup(objs Objects) *Lookup { return &Lookup{x: newIndex(objs)} }

// File is the file the object came from, if any.
func (l *Lookup) File(kind, ns, name string) string { return l.x.file(kind, ns, name) }

// ServiceBackend resolves port of Service ns/name to a backend with the target group
// settings of ParseBackendAnnotations. The warning says why the backend has no endpoints
// (its calls fail until it has some).
func (l *Lookup) ServiceBackend(ns, name string, port int32, settings BackendSettings) (be *config.Backend, warning string, err error) {
	svcName := ObjectName("Service", ns, name)
	svc := l.x.services[ns+"/"+name]
	switch {
	case svc == nil:
		return nil, "", fmt.Errorf("%s not found", svcName)
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return nil, "", fmt.Errorf("%s is of type ExternalName, which has no endpoints to balance across", svcName)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, "", fmt.Errorf("%s has no port %d (ports: %s)", svcName, port, describePorts(svc))
	}
	written := strconv.Itoa(int(port))
	eps, why := l.x.endpoints(ns, svc, sp)
	if len(eps) == 0 {
		warning = fmt.Sprintf("%s has no endpoints for port %s%s; calls to it will fail with UNAVAILABLE until it has some", svcName, written, why)
	}
	return newBackend(ns, name, written, eps, settings.s), warning, nil
}

// TLSCertificate reads the kubernetes.io/tls Secret ns/name as a certificate (Ref
// "secret ns/name") and its parsed leaf.
func (l *Lookup) TLSCertificate(ns, name string) (config.Certificate, *x509.Certificate, error) {
	sName := ObjectName("Secret", ns, name)
	s := l.x.secrets[ns+"/"+name]
	switch {
	case s == nil:
		return config.Certificate{}, nil, fmt.Errorf("%s not found", sName)
	case s.Type != corev1.SecretTypeTLS:
		return config.Certificate{}, nil, fmt.Errorf("%s has type %q; want %s", sName, s.Type, corev1.SecretTypeTLS)
	}
	c, err := keyPair(s)
	if err != nil {
		return config.Certificate{}, nil, fmt.Errorf("%s: %w", sName, err)
	}
	c.Ref = "secret " + ns + "/" + name
	return c.Certificate, c.leaf, nil
}

// SortRoutes orders a listener's routes as the router matches them (see sortRoutes).
func SortRoutes(rs []config.Route) { sortRoutes(rs) }
