package gatewayapi

import (
	"slices"
	"sort"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// TranslateAll is the whole translation of a set of objects: the Ingresses (ingress.Translate)
// and the Gateway API objects (Translate) into one model. The Ingresses' ports are theirs;
// a Gateway listener on one of them is refused. A backend both use keeps the Ingress's
// target group settings.
func TranslateAll(objs ingress.Objects, opts ingress.Options) (*config.Model, config.Problems) {
	model, problems := ingress.Translate(objs, opts)
	if len(objs.GatewayClasses)+len(objs.Gateways)+len(objs.GRPCRoutes)+len(objs.HTTPRoutes) == 0 {
		return model, problems
	}
	gw, more := Translate(objs, ingressPorts(model))
	out := *model
	out.Listeners = append(slices.Clone(model.Listeners), gw.Listeners...)
	sort.Slice(out.Listeners, func(i, j int) bool { return out.Listeners[i].Port < out.Listeners[j].Port })
	out.Backends = make(map[string]*config.Backend, len(model.Backends)+len(gw.Backends))
	for k, b := range gw.Backends {
		out.Backends[k] = b
	}
	for k, b := range model.Backends {
		out.Backends[k] = b
	}
	out.GatewayAPI = gw.GatewayAPI
	problems = append(problems, more...)
	problems.Sort()
	return &out, problems
}

// ingressPorts maps each port the Ingresses serve to the first Ingress (by name) on it.
func ingressPorts(m *config.Model) map[int]string {
	taken := map[int]string{}
	for _, l := range m.Listeners {
		taken[l.Port] = "Ingresses"
	}
	for _, in := range m.Ingresses {
		for _, p := range in.Ports {
			if taken[p] == "Ingresses" {
				taken[p] = ingress.ObjectName("Ingress", in.Namespace, in.Name)
			}
		}
	}
	return taken
}
