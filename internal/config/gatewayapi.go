package config

// GatewayAPI is what translation found of the Gateway API objects, for their status
// (the controller writes it back) and for `validate`: the conditions the specification
// asks for, each with its reason. The served listeners and routes are in Model.Listeners
// like an Ingress's.
type GatewayAPI struct {
	Classes  []GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways []GatewayStatus      `json:"gateways,omitempty"`
	Routes   []RouteStatus        `json:"routes,omitempty"`
}

// StatusCondition is one status condition: its type (Accepted, Programmed, ResolvedRefs), True
// or False, and the specification's reason.
type StatusCondition struct {
	Type    string `json:"type"`
	Status  bool   `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// GatewayClassStatus is a GatewayClass of milvus-lb's controllerName.
type GatewayClassStatus struct {
	Name       string            `json:"name"`
	Generation int64             `json:"generation"`
	Conditions []StatusCondition `json:"conditions"`
}

// GatewayStatus is one Gateway of a served class.
type GatewayStatus struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Class      string            `json:"class"`
	Generation int64             `json:"generation"`
	Conditions []StatusCondition `json:"conditions"`
	Listeners  []ListenerStatus  `json:"listeners"`
	Source     string            `json:"source,omitempty"` // the file it came from, standalone only
}

// ListenerStatus is one listener of a Gateway.
type ListenerStatus struct {
	Name           string            `json:"name"`
	Port           int               `json:"port"`
	Protocol       Protocol          `json:"protocol"`
	AttachedRoutes int               `json:"attachedRoutes"`
	SupportedKinds []string          `json:"supportedKinds"`
	Conditions     []StatusCondition `json:"conditions"`
}

// RouteStatus is one GRPCRoute or HTTPRoute that names a Gateway of a served class.
type RouteStatus struct {
	Kind       string              `json:"kind"` // GRPCRoute or HTTPRoute
	Namespace  string              `json:"namespace"`
	Name       string              `json:"name"`
	Generation int64               `json:"generation"`
	Parents    []RouteParentStatus `json:"parents"`
}

// RouteParentStatus is a route's status under one of its parentRefs.
type RouteParentStatus struct {
	Namespace   string            `json:"namespace"` // the Gateway's
	Name        string            `json:"name"`
	SectionName string            `json:"sectionName,omitempty"`
	Port        int               `json:"port,omitempty"`
	Conditions  []StatusCondition `json:"conditions"`
}
