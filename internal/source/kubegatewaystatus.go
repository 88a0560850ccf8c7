package source

import (
	"context"
	"reflect"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gatewayapi"
)

// reconcileGateways writes the status translation found for the Gateway API objects:
// GatewayClass Accepted; Gateway Accepted, Programmed, addresses and its listeners';
// each route's parent entries of milvus-lb's controllerName (others' are kept). An
// object whose status already says so is not written.
func (r *Reporter) reconcileGateways(ctx context.Context, gs *config.GatewayAPI, addrs []networkingv1.IngressLoadBalancerIngress) {
	if r.opts.Gateway == nil || gs == nil {
		return
	}
	for _, c := range gs.Classes {
		updateStatus(ctx, r, "gatewayclasses", "", c.Name, func(o *gwv1.GatewayClass) {
			setConditions(&o.Status.Conditions, c.Conditions, c.Generation)
		})
	}
	for _, g := range gs.Gateways {
		updateStatus(ctx, r, "gateways", g.Namespace, g.Name, func(o *gwv1.Gateway) { gatewayStatus(o, g, addrs) })
	}
	for _, rt := range gs.Routes {
		switch rt.Kind {
		case "GRPCRoute":
			updateStatus(ctx, r, "grpcroutes", rt.Namespace, rt.Name, func(o *gwv1.GRPCRoute) { routeStatus(&o.Status.RouteStatus, rt) })
		case "HTTPRoute":
			updateStatus(ctx, r, "httproutes", rt.Namespace, rt.Name, func(o *gwv1.HTTPRoute) { routeStatus(&o.Status.RouteStatus, rt) })
		}
	}
}

// updateStatus reads the object, lets set change its status, and writes the status if
// it changed. Errors are logged: the next reconcile tries again.
func updateStatus[T any](ctx context.Context, r *Reporter, resource, ns, name string, set func(*T)) {
	gvr := schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: resource}
	api := r.opts.Gateway.Resource(gvr).Namespace(ns)
	u, err := api.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		r.log.Warn("reading for status", "resource", resource, "namespace", ns, "name", name, "err", err)
		return
	}
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		r.log.Warn("reading for status", "resource", resource, "namespace", ns, "name", name, "err", err)
		return
	}
	before := u.Object["status"]
	set(&obj)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&obj)
	if err != nil {
		return
	}
	if reflect.DeepEqual(before, m["status"]) {
		return
	}
	out := &unstructured.Unstructured{Object: u.Object}
	out.Object["status"] = m["status"]
	if _, err := api.UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		r.log.Warn("writing status", "resource", resource, "namespace", ns, "name", name, "err", err)
	}
}

// setConditions sets want on cs; a condition that keeps its status keeps its
// lastTransitionTime, as meta.SetStatusCondition does.
func setConditions(cs *[]metav1.Condition, want []config.StatusCondition, generation int64) {
	for _, c := range want {
		st := metav1.ConditionFalse
		if c.Status {
			st = metav1.ConditionTrue
		}
		meta.SetStatusCondition(cs, metav1.Condition{Type: c.Type, Status: st, Reason: c.Reason,
			Message: c.Message, ObservedGeneration: generation})
	}
}

func gatewayStatus(o *gwv1.Gateway, g config.GatewayStatus, addrs []networkingv1.IngressLoadBalancerIngress) {
	setConditions(&o.Status.Conditions, g.Conditions, g.Generation)
	o.Status.Addresses = nil
	for _, a := range addrs {
		t, v := gwv1.IPAddressType, a.IP
		if v == "" {
			t, v = gwv1.HostnameAddressType, a.Hostname
		}
		o.Status.Addresses = append(o.Status.Addresses, gwv1.GatewayStatusAddress{Type: &t, Value: v})
	}
	old := map[string][]metav1.Condition{}
	for _, l := range o.Status.Listeners {
		old[string(l.Name)] = l.Conditions
	}
	o.Status.Listeners = nil
	for _, l := range g.Listeners {
		ls := gwv1.ListenerStatus{Name: gwv1.SectionName(l.Name), AttachedRoutes: int32(l.AttachedRoutes),
			Conditions: old[l.Name], SupportedKinds: []gwv1.RouteGroupKind{}}
		for _, k := range l.SupportedKinds {
			grp := gwv1.Group(gatewayapi.Group)
			ls.SupportedKinds = append(ls.SupportedKinds, gwv1.RouteGroupKind{Group: &grp, Kind: gwv1.Kind(k)})
		}
		setConditions(&ls.Conditions, l.Conditions, g.Generation)
		o.Status.Listeners = append(o.Status.Listeners, ls)
	}
}

// routeStatus replaces milvus-lb's parent entries and keeps other controllers'.
func routeStatus(rs *gwv1.RouteStatus, rt config.RouteStatus) {
	old := map[string][]metav1.Condition{}
	var kept []gwv1.RouteParentStatus
	for _, p := range rs.Parents {
		if p.ControllerName == gatewayapi.ControllerName {
			old[parentKey(p.ParentRef)] = p.Conditions
		} else {
			kept = append(kept, p)
		}
	}
	for _, p := range rt.Parents {
		// Group and Kind as the CRD would default them, so that readers comparing parentRefs
		// (the conformance suite does) see the same with any CRD.
		ns, grp, kind := gwv1.Namespace(p.Namespace), gwv1.Group(gatewayapi.Group), gwv1.Kind("Gateway")
		ref := gwv1.ParentReference{Group: &grp, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(p.Name)}
		if p.SectionName != "" {
			sn := gwv1.SectionName(p.SectionName)
			ref.SectionName = &sn
		}
		if p.Port != 0 {
			pn := gwv1.PortNumber(p.Port)
			ref.Port = &pn
		}
		ps := gwv1.RouteParentStatus{ParentRef: ref, ControllerName: gatewayapi.ControllerName, Conditions: old[parentKey(ref)]}
		setConditions(&ps.Conditions, p.Conditions, rt.Generation)
		kept = append(kept, ps)
	}
	rs.Parents = kept
}

func parentKey(p gwv1.ParentReference) string {
	k := string(p.Name)
	if p.Namespace != nil {
		k = string(*p.Namespace) + "/" + k
	}
	if p.SectionName != nil {
		k += "#" + string(*p.SectionName)
	}
	return k
}
