package source

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// The status writer replaces milvus-lb's parent entries of a route and keeps another
// controller's; the Gateway gets its conditions, addresses and listeners; a second
// reconcile with the same model writes nothing.
func TestReconcileGatewayStatus(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
		"metadata": map[string]any{"namespace": "milvus", "name": "r", "generation": int64(2)},
		"spec":     map[string]any{},
		"status": map[string]any{"parents": []any{map[string]any{
			"parentRef":      map[string]any{"name": "theirs"},
			"controllerName": "example.com/other",
			"conditions":     []any{},
		}}},
	}}
	gw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"namespace": "milvus", "name": "g", "generation": int64(1)},
		"spec":     map[string]any{"gatewayClassName": "milvus-lb"},
	}}
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		{Group: GatewayGroup, Version: "v1", Resource: "grpcroutes"}: "GRPCRouteList",
		{Group: GatewayGroup, Version: "v1", Resource: "gateways"}:   "GatewayList",
	})
	for res, o := range map[string]*unstructured.Unstructured{"grpcroutes": route, "gateways": gw} {
		gvr := schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: res}
		if _, err := dyn.Resource(gvr).Namespace("milvus").Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReporter(fake.NewClientset(), nil, StatusOptions{Gateway: dyn})
	ok := []config.StatusCondition{{Type: "Accepted", Status: true, Reason: "Accepted"}}
	model := &config.GatewayAPI{
		Gateways: []config.GatewayStatus{{Namespace: "milvus", Name: "g", Generation: 1, Conditions: ok,
			Listeners: []config.ListenerStatus{{Name: "https", AttachedRoutes: 1, SupportedKinds: []string{"GRPCRoute"}, Conditions: ok}}}},
		Routes: []config.RouteStatus{{Kind: "GRPCRoute", Namespace: "milvus", Name: "r", Generation: 2,
			Parents: []config.RouteParentStatus{{Namespace: "milvus", Name: "g", Conditions: []config.StatusCondition{
				{Type: "ResolvedRefs", Status: false, Reason: "BackendNotFound", Message: "Service milvus/x not found"}}}}}},
	}
	addrs := []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.12"}}
	ctx := context.Background()
	r.reconcileGateways(ctx, model, addrs)

	gvr := schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: "grpcroutes"}
	got, err := dyn.Resource(gvr).Namespace("milvus").Get(ctx, "r", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parents, _, _ := unstructured.NestedSlice(got.Object, "status", "parents")
	if len(parents) != 2 {
		t.Fatalf("parents %v, want the other controller's and ours", parents)
	}
	ours := parents[1].(map[string]any)
	cs := ours["conditions"].([]any)[0].(map[string]any)
	if ours["controllerName"] != "milvus-lb.io/gateway-controller" || cs["reason"] != "BackendNotFound" || cs["status"] != "False" || cs["observedGeneration"] != int64(2) {
		t.Errorf("our parent entry %v", ours)
	}
	g, err := dyn.Resource(schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: "gateways"}).Namespace("milvus").Get(ctx, "g", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := unstructured.NestedSlice(g.Object, "status", "addresses")
	listeners, _, _ := unstructured.NestedSlice(g.Object, "status", "listeners")
	if len(addr) != 1 || addr[0].(map[string]any)["value"] != "10.0.0.12" || len(listeners) != 1 ||
		listeners[0].(map[string]any)["attachedRoutes"] != int64(1) {
		t.Errorf("gateway status %v", g.Object["status"])
	}

	before := len(dyn.Actions())
	r.reconcileGateways(ctx, model, addrs)
	for _, a := range dyn.Actions()[before:] {
		if a.GetVerb() != "get" {
			t.Errorf("an unchanged status was written again: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
