package ingress

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// backend resolves an Ingress backend (at path p) to a config.Backend with the Ingress's
// target group settings. It returns nil after reporting an error.
func (x *index) backend(ns string, b *networkingv1.IngressBackend, p *field.Path, s backendSettings, r *reporter) *config.Backend {
	if b.Resource != nil {
		r.errorf(p.Child("resource"), "resource backends are not supported; use a Service")
		return nil
	}
	if b.Service == nil || b.Service.Name == "" {
		r.errorf(p.Child("service", "name"), "a Service name is required")
		return nil
	}
	sp := p.Child("service")
	svcName := ObjectName("Service", ns, b.Service.Name)
	svc := x.services[ns+"/"+b.Service.Name]
	if svc == nil {
		r.errorf(sp.Child("name"), "%s not found", svcName)
		return nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		r.errorf(sp.Child("name"), "%s is of type ExternalName, which has no endpoints to balance across", svcName)
		return nil
	}

	var port *corev1.ServicePort
	var written string
	switch ref := b.Service.Port; {
	case ref.Name != "":
		written = ref.Name
		if ref.Name == "use-annotation" {
			r.errorf(sp.Child("port", "name"), "use-annotation only names an actions annotation in a path's backend, not a Service port")
			return nil
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Name == ref.Name {
				port = &svc.Spec.Ports[i]
			}
		}
		if port == nil {
			r.errorf(sp.Child("port", "name"), "%s has no port named %q (ports: %s)", svcName, ref.Name, describePorts(svc))
			return nil
		}
	case ref.Number != 0:
		written = strconv.Itoa(int(ref.Number))
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].Port == ref.Number {
				port = &svc.Spec.Ports[i]
			}
		}
		if port == nil {
			r.errorf(sp.Child("port", "number"), "%s has no port %d (ports: %s)", svcName, ref.Number, describePorts(svc))
			return nil
		}
	default:
		r.errorf(sp.Child("port"), "port.number or port.name is required")
		return nil
	}

	eps, why := x.endpoints(ns, svc, port)
	if len(eps) == 0 {
		r.warnf(sp.Child("name"), "%s has no endpoints for port %s%s; calls to it will fail with UNAVAILABLE until it has some", svcName, written, why)
	}
	return newBackend(ns, b.Service.Name, written, eps, s)
}

// newBackend is the backend of port written of Service ns/name with the settings s.
func newBackend(ns, name, written string, eps []config.Endpoint, s backendSettings) *config.Backend {
	return &config.Backend{
		Key:                 fmt.Sprintf("%s/%s:%s", ns, name, written),
		Service:             ns + "/" + name,
		Port:                written,
		Protocol:            s.Protocol,
		TLS:                 s.TLS,
		Algorithm:           s.Algorithm,
		Endpoints:           eps,
		HealthCheck:         s.HealthCheck,
		DeregistrationDelay: s.DeregistrationDelay,
		SlowStart:           s.SlowStart,
		Resilience:          s.Resilience,
	}
}

func describePorts(svc *corev1.Service) string {
	if len(svc.Spec.Ports) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		if p.Name != "" {
			parts = append(parts, fmt.Sprintf("%s %d", p.Name, p.Port))
		} else {
			parts = append(parts, strconv.Itoa(int(p.Port)))
		}
	}
	return strings.Join(parts, ", ")
}

// endpoints lists the addresses behind one Service port, sorted by address. They come
// from the Service's EndpointSlices, whose ports carry the Service port's name and the
// resolved target port; only when the Service has no EndpointSlice at all are the legacy
// Endpoints read. why explains an empty result.
func (x *index) endpoints(ns string, svc *corev1.Service, port *corev1.ServicePort) (eps []config.Endpoint, why string) {
	seen := map[string]int{} // address → index in eps
	add := func(addr string, ready, terminating bool) {
		if i, ok := seen[addr]; ok {
			// The same address in two slices happens while a slice is being replaced;
			// believe whichever says it can take traffic.
			eps[i].Ready = eps[i].Ready || ready
			eps[i].Terminating = eps[i].Terminating && terminating
			return
		}
		seen[addr] = len(eps)
		eps = append(eps, config.Endpoint{Address: addr, Ready: ready, Terminating: terminating})
	}

	if slices := x.slices[ns+"/"+svc.Name]; len(slices) > 0 {
		matched := false
		for _, sl := range slices {
			num := slicePort(sl, port.Name)
			if num == 0 {
				continue
			}
			matched = true
			for _, ep := range sl.Endpoints {
				// A nil ready condition means unknown, which the API says to read as ready.
				ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
				terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
				for _, a := range ep.Addresses {
					add(net.JoinHostPort(a, strconv.Itoa(num)), ready && !terminating, terminating)
				}
			}
		}
		if !matched {
			why = fmt.Sprintf(" (its EndpointSlices have no port named %q)", port.Name)
		}
	} else if e := x.legacyEndpoints[ns+"/"+svc.Name]; e != nil {
		for _, ss := range e.Subsets {
			var num int
			for _, p := range ss.Ports {
				if p.Name == port.Name {
					num = int(p.Port)
				}
			}
			if num == 0 {
				continue
			}
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(num)), true, false)
			}
			for _, a := range ss.NotReadyAddresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(num)), false, false)
			}
		}
	} else {
		why = " (no EndpointSlice or Endpoints object)"
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Address < eps[j].Address })
	return eps, why
}

// slicePort returns the port number of the EndpointSlice port named name (a Service's
// single unnamed port has the empty name), or 0.
func slicePort(sl *discoveryv1.EndpointSlice, name string) int {
	for _, p := range sl.Ports {
		n := ""
		if p.Name != nil {
			n = *p.Name
		}
		if n == name && p.Port != nil {
			return int(*p.Port)
		}
	}
	return 0
}
