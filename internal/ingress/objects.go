// Package ingress translates Kubernetes objects (Ingress, IngressClass, Service,
// EndpointSlice or Endpoints, Secret) and the AWS Load Balancer Controller's
// alb.ingress.kubernetes.io/* annotations into a config.Model. Translation is pure: the same
// objects always give the same model and the same problems, whether they came from files
// (standalone) or from an API server (controller).
package ingress

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Objects is everything translation reads. Slices may be in any order.
type Objects struct {
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Endpoints      []*corev1.Endpoints
	Secrets        []*corev1.Secret
	// The Gateway API objects, translated by internal/gatewayapi into the same model; the
	// Ingress translation does not read them.
	GatewayClasses  []*gwv1.GatewayClass
	Gateways        []*gwv1.Gateway
	GRPCRoutes      []*gwv1.GRPCRoute
	HTTPRoutes      []*gwv1.HTTPRoute
	ReferenceGrants []*gwv1.ReferenceGrant
	// Namespaces, for their labels: a Gateway listener's allowedRoutes.namespaces.from
	// Selector matches them. In controller mode, watched when the Gateway API is; with
	// serve -f, the Namespace objects of the files (a namespace without one has no labels).
	Namespaces []*corev1.Namespace
	// Files maps ObjectName(kind, ns, name) to the file the object was read from, so that
	// problems name it. Empty for objects from an API server.
	Files map[string]string
	// CertificateStore says where the certificates of `cert import` were looked for, as
	// a "not found" message names it: "state directory /path (...)" or "namespace ns".
	// Empty when unknown.
	CertificateStore string
}

// ObjectName is how problems and Files name an object: "Kind ns/name" ("Kind name" for
// cluster-scoped kinds).
func ObjectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// ControllerName is the spec.controller of IngressClasses that milvus-lb serves, besides
// the AWS controller's own "ingress.k8s.aws/alb" (so the guide's class alb works as is).
const ControllerName = "milvus-lb.io/ingress-controller"

// Options tune translation.
type Options struct {
	// Classes are the IngressClass names served; default DefaultClasses.
	Classes []string
	// ReadFile reads the files that annotations name (mutual-authentication trust
	// stores); os.ReadFile when nil. Tests give a fake to keep translation hermetic.
	ReadFile ReadFileFunc
}

// DefaultClasses are served when Options.Classes is empty: the guide's "alb" and our own.
var DefaultClasses = []string{"alb", "milvus-lb"}
