package gatewayapi

import gwv1 "sigs.k8s.io/gateway-api/apis/v1"

// grants are the ReferenceGrants: a reference from one namespace to an object in another
// is allowed only when a ReferenceGrant in the target's namespace says so.
type grants map[string][]*gwv1.ReferenceGrant // by namespace

func newGrants(rgs []*gwv1.ReferenceGrant) grants {
	g := grants{}
	for _, rg := range rgs {
		if rg != nil {
			ns := namespaceOf(rg.Namespace)
			g[ns] = append(g[ns], rg)
		}
	}
	return g
}

// allow reports whether objects of fromKind (of the Gateway API group) in fromNS may
// refer to the core object toKind toNS/toName.
func (g grants) allow(fromKind, fromNS, toKind, toNS, toName string) bool {
	for _, rg := range g[toNS] {
		from := false
		for _, f := range rg.Spec.From {
			if string(f.Group) == Group && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				from = true
			}
		}
		if !from {
			continue
		}
		for _, to := range rg.Spec.To {
			if to.Group == "" && string(to.Kind) == toKind && (to.Name == nil || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}
