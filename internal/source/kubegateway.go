package source

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// GatewayGroup is the Gateway API's group; its CRDs are installed by the user.
const GatewayGroup = "gateway.networking.k8s.io"

// gatewayKinds are the Gateway API resources the controller watches, by kind.
var gatewayKinds = []struct{ kind, resource string }{
	{"GatewayClass", "gatewayclasses"},
	{"Gateway", "gateways"},
	{"GRPCRoute", "grpcroutes"},
	{"HTTPRoute", "httproutes"},
	{"ReferenceGrant", "referencegrants"},
}

// gatewayWatch watches the Gateway API objects with a dynamic client and converts them
// to their typed form for translation. Without the CRDs it watches nothing.
type gatewayWatch struct {
	factory   dynamicinformer.DynamicSharedInformerFactory
	informers map[string]cache.SharedIndexInformer // by kind
	// Namespaces, for the labels allowedRoutes selectors match: cluster-scoped, so
	// watched only by a controller of every namespace (nil otherwise).
	nsFactory  dynamicinformer.DynamicSharedInformerFactory
	namespaces cache.SharedIndexInformer
}

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// GatewayResources finds which Gateway API resources the API server serves: each kind
// in v1, ReferenceGrant in v1beta1 when an older CRD has no v1. Kinds without a CRD are
// left out.
func GatewayResources(d discovery.DiscoveryInterface) map[string]schema.GroupVersionResource {
	out := map[string]schema.GroupVersionResource{}
	for _, v := range []string{"v1beta1", "v1"} { // v1 last: it wins
		list, err := d.ServerResourcesForGroupVersion(GatewayGroup + "/" + v)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			for _, k := range gatewayKinds {
				if r.Name == k.resource && (v == "v1" || k.kind == "ReferenceGrant") {
					out[k.kind] = schema.GroupVersionResource{Group: GatewayGroup, Version: v, Resource: k.resource}
				}
			}
		}
	}
	return out
}

// newGatewayWatch prepares informers for the resources found; nil when there are none.
func (k *Kube) newGatewayWatch(client dynamic.Interface, found map[string]schema.GroupVersionResource) *gatewayWatch {
	if len(found) == 0 {
		return nil
	}
	w := &gatewayWatch{informers: map[string]cache.SharedIndexInformer{}}
	w.factory = dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, k.opts.Namespace, nil)
	for _, gk := range gatewayKinds {
		gvr, ok := found[gk.kind]
		if !ok {
			continue
		}
		w.informers[gk.kind] = k.gatewayInformer(w.factory.ForResource(gvr).Informer(), gk.kind)
	}
	if k.opts.Namespace == "" {
		w.nsFactory = dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
		w.namespaces = k.gatewayInformer(w.nsFactory.ForResource(namespacesGVR).Informer(), "Namespace")
	}
	return w
}

// gatewayInformer sets up an informer of the Gateway watch: managed fields dropped, a
// new snapshot on every change but our own status writes.
func (k *Kube) gatewayInformer(inf cache.SharedIndexInformer, kind string) cache.SharedIndexInformer {
	inf.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		return obj, nil
	})
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { k.notify() },
		UpdateFunc: func(o, n any) {
			// Our own status writes come back as updates that change nothing read.
			if a, ok1 := o.(metav1.Object); ok1 {
				if b, ok2 := n.(metav1.Object); ok2 && sameSpec(a, b) {
					return
				}
			}
			k.notify()
		},
		DeleteFunc: func(any) { k.notify() },
	})
	inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		k.log.Warn("kubernetes watch failed; retrying", "kind", kind, "err", err)
	})
	return inf
}

func sameSpec(a, b metav1.Object) bool {
	return a.GetGeneration() == b.GetGeneration() && a.GetGeneration() != 0 &&
		maps.Equal(a.GetAnnotations(), b.GetAnnotations()) && maps.Equal(a.GetLabels(), b.GetLabels()) &&
		a.GetDeletionTimestamp().Equal(b.GetDeletionTimestamp())
}

// snapshot adds the cached Gateway API objects to objs, sorted by namespace and name.
func (w *gatewayWatch) snapshot(objs *ingress.Objects) {
	if w == nil {
		return
	}
	objs.GatewayClasses = convertAll[gwv1.GatewayClass](w.informers["GatewayClass"])
	objs.Gateways = convertAll[gwv1.Gateway](w.informers["Gateway"])
	objs.GRPCRoutes = convertAll[gwv1.GRPCRoute](w.informers["GRPCRoute"])
	objs.HTTPRoutes = convertAll[gwv1.HTTPRoute](w.informers["HTTPRoute"])
	objs.ReferenceGrants = convertAll[gwv1.ReferenceGrant](w.informers["ReferenceGrant"])
	objs.Namespaces = convertAll[corev1.Namespace](w.namespaces)
}

// convertAll converts an informer's unstructured objects to T. An object that does not
// convert (the API server validated it against the CRD's schema, so only a CRD far from
// the one milvus-lb knows can cause that) is left out.
func convertAll[T any, PT interface {
	*T
	metav1.Object
}](inf cache.SharedIndexInformer) []PT {
	if inf == nil {
		return nil
	}
	var out []PT
	for _, it := range inf.GetIndexer().List() {
		u, ok := it.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		var v T
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
			continue
		}
		out = append(out, PT(&v))
	}
	sortObjects(out)
	return out
}
