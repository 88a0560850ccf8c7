// Package gatewayapi translates Gateway API objects (GatewayClass, Gateway, GRPCRoute,
// HTTPRoute, ReferenceGrant of gateway.networking.k8s.io/v1) into the same config.Model
// that internal/ingress makes of Ingresses, so every data-path feature works the same
// under both. Like the Ingress translation it is pure: the same objects always give the
// same model, the same problems (naming file, object and field) and the same status
// conditions, with the specification's reasons.
package gatewayapi

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// ControllerName is the controllerName of the GatewayClasses milvus-lb serves.
const ControllerName = "milvus-lb.io/gateway-controller"

// Group is the Gateway API's API group.
const Group = "gateway.networking.k8s.io"

// Translate turns the Gateway API objects in objs into listeners, backends and status.
// taken maps the ports that Ingresses already serve to the Ingress that holds each: a
// Gateway listener cannot share a port with an Ingress (PortUnavailable). Gateways of
// classes with another controllerName, and routes attached only to them, are left alone
// without a problem, as in a cluster with several implementations.
func Translate(objs ingress.Objects, taken map[int]string) (*config.Model, config.Problems) {
	t := &translation{
		look:     ingress.NewLookup(objs),
		objs:     objs,
		taken:    taken,
		ports:    map[int]*portState{},
		backends: map[string]*config.Backend{},
		status:   &config.GatewayAPI{},
		grants:   newGrants(objs.ReferenceGrants),
	}
	t.namespaceLabels = map[string]map[string]string{}
	for _, ns := range objs.Namespaces {
		if ns != nil {
			t.namespaceLabels[ns.Name] = ns.Labels
		}
	}
	t.classes()
	for _, gw := range byAge(objs.Gateways) {
		t.gateway(gw)
	}
	t.routes()
	model := &config.Model{Backends: t.backends, GatewayAPI: t.status}
	model.Listeners = t.listeners()
	if len(t.status.Classes)+len(t.status.Gateways)+len(t.status.Routes) == 0 {
		model.GatewayAPI = nil
	}
	t.problems.Sort()
	return model, t.problems
}

// translation is one run of Translate.
type translation struct {
	look         *ingress.Lookup
	objs         ingress.Objects
	taken        map[int]string
	served       map[string]bool          // GatewayClass names
	gateways     map[string]*gatewayState // by ns/name
	gatewayOrder []*gatewayState
	ports        map[int]*portState
	backends     map[string]*config.Backend
	status       *config.GatewayAPI
	grants       grants
	// classSettings are the backend settings of each served GatewayClass (its
	// annotations); defaultSettings those of a class without any.
	classSettings   map[string]ingress.BackendSettings
	defaultSettings ingress.BackendSettings
	// namespaceLabels are the labels of each Namespace, for allowedRoutes selectors.
	namespaceLabels map[string]map[string]string
	problems        config.Problems
}

// reporter adds problems about one object.
type reporter struct {
	t            *translation
	file, object string
}

func (t *translation) reporter(kind, ns, name string) *reporter {
	return &reporter{t: t, file: t.look.File(kind, ns, name), object: ingress.ObjectName(kind, ns, name)}
}

func (r *reporter) add(sev config.Severity, at *field.Path, msg string) {
	f := ""
	if at != nil {
		f = at.String()
	}
	r.t.problems = append(r.t.problems, config.Problem{Severity: sev, File: r.file, Object: r.object, Field: f, Message: msg})
}

func (r *reporter) errorf(at *field.Path, msg string) { r.add(config.Error, at, msg) }
func (r *reporter) warnf(at *field.Path, msg string)  { r.add(config.Warning, at, msg) }

// classes marks the GatewayClasses of milvus-lb's controllerName as served and Accepted,
// and reads their target group annotations: they set the backends of their routes. A
// class whose annotations have errors is not Accepted (InvalidParameters) nor served.
func (t *translation) classes() {
	t.served = map[string]bool{}
	t.classSettings = map[string]ingress.BackendSettings{}
	t.defaultSettings, _ = ingress.ParseBackendAnnotations(nil, config.BackendGRPC, "", "")
	for _, gc := range t.objs.GatewayClasses {
		if gc == nil || string(gc.Spec.ControllerName) != ControllerName {
			continue
		}
		settings, ps := ingress.ParseBackendAnnotations(gc.Annotations, config.BackendGRPC,
			t.look.File("GatewayClass", "", gc.Name), ingress.ObjectName("GatewayClass", "", gc.Name))
		t.problems = append(t.problems, ps...)
		accepted := cond("Accepted", true, "Accepted", "")
		if errs := ps.Errors(); len(errs) > 0 {
			accepted = cond("Accepted", false, "InvalidParameters", errs[0].Field+": "+errs[0].Message)
		} else {
			t.served[gc.Name] = true
			t.classSettings[gc.Name] = settings
		}
		t.status.Classes = append(t.status.Classes, config.GatewayClassStatus{
			Name: gc.Name, Generation: gc.Generation, Conditions: []config.StatusCondition{accepted},
		})
	}
	sort.Slice(t.status.Classes, func(i, j int) bool { return t.status.Classes[i].Name < t.status.Classes[j].Name })
}

func cond(typ string, ok bool, reason, msg string) config.StatusCondition {
	return config.StatusCondition{Type: typ, Status: ok, Reason: reason, Message: msg}
}

// aged is what byAge sorts: every Gateway API object.
type aged interface {
	comparable
	GetCreationTimestamp() metav1.Time
	GetNamespace() string
	GetName() string
}

// byAge orders objects as the specification settles conflicts: the oldest first, then by
// namespace/name. nil entries are dropped.
func byAge[T aged](in []T) []T {
	var zero T
	out := make([]T, 0, len(in))
	for _, o := range in {
		if o != zero {
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].GetCreationTimestamp(), out[j].GetCreationTimestamp()
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return nsName(out[i].GetNamespace(), out[i].GetName()) < nsName(out[j].GetNamespace(), out[j].GetName())
	})
	return out
}

func namespaceOf(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func nsName(ns, name string) string { return namespaceOf(ns) + "/" + name }
