// Package config is the desired-state model of milvus-lb: listeners, certificates, routes,
// backends and their policies. It is pure data: nothing here opens a socket or reads a file.
// The ingress package produces it from Kubernetes objects; the gateway package compiles it
// into the snapshot the data path reads.
package config

import (
	"fmt"
	"time"
)

// Model is one complete desired state. A Model is never mutated after it is built; a new
// one replaces it.
type Model struct {
	Listeners []Listener          `json:"listeners"`
	Backends  map[string]*Backend `json:"backends"` // by Backend.Key
	// Ingresses describes every Ingress that was considered, in name order, for status
	// reporting (`get ingress`) and for the controller's status writer.
	Ingresses []IngressStatus `json:"ingresses"`
	// RateLimits are the milvus-lb.io/rate-limits of each Ingress (by ns/name): they hold
	// for the calls its routes take.
	RateLimits map[string][]RateLimit `json:"rateLimits,omitempty"`
	// Caches are the milvus-lb.io/cache of each Ingress (by ns/name) that turns it on.
	Caches map[string]*Cache `json:"caches,omitempty"`
	// GatewayAPI is the status of the Gateway API objects (gatewayapi.go); nil when there
	// are none.
	GatewayAPI *GatewayAPI `json:"gatewayAPI,omitempty"`
}

// Protocol of a listener, as the ALB names it in listen-ports.
type Protocol string

const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
)

// Listener is one port the balancer serves.
type Listener struct {
	Port     int      `json:"port"`
	Protocol Protocol `json:"protocol"`
	// TLS is the handshake an HTTPS listener offers (its ssl-policy, resolved); zero for
	// HTTP listeners.
	TLS TLSPolicy `json:"tls,omitzero"`
	// Certificates are offered by SNI; the first is the default for a client that sends
	// no SNI or a name no certificate covers (the ALB does the same with its default
	// certificate).
	Certificates []Certificate `json:"certificates,omitempty"`
	// MutualTLS is the client-certificate policy; nil means off.
	MutualTLS *MutualTLS `json:"mutualTLS,omitempty"`
	// Routes are ordered: most specific first (see router).
	Routes []Route `json:"routes"`
}

// Certificate is a key pair in PEM, plus where it came from for error messages.
type Certificate struct {
	// Ref is the certificate-arn or "secret ns/name".
	Ref      string `json:"ref"`
	CertPEM  []byte `json:"-"` // leaf followed by the chain
	KeyPEM   []byte `json:"-"`
	Identity string `json:"identity,omitempty"` // fingerprint, for change detection in golden files
}

// MutualTLS mirrors the ALB's mutual-authentication annotation for one port.
type MutualTLS struct {
	Mode          string `json:"mode"` // "verify" or "passthrough"
	TrustStorePEM []byte `json:"-"`
	TrustStore    string `json:"trustStore,omitempty"`
	IgnoreExpiry  bool   `json:"ignoreClientCertificateExpiry,omitempty"`
}

// PathType follows networking.k8s.io/v1.
type PathType string

const (
	PathPrefix                 PathType = "Prefix"
	PathExact                  PathType = "Exact"
	PathImplementationSpecific PathType = "ImplementationSpecific"
)

// Route sends requests for Host (exact, or "*.suffix" wildcard, or "" for any) and Path
// that meet its Conditions to a backend, to weighted backends (Forward), or answers them
// itself (Fixed). SSLRedirect answers HTTP/1.1 with a redirect to that HTTPS port instead.
type Route struct {
	Host string `json:"host"`
	// MultiLabel: a wildcard Host *.example.com also matches a.b.example.com, as the
	// Gateway API's wildcards do (an Ingress's covers exactly one label).
	MultiLabel  bool              `json:"multiLabel,omitempty"`
	Path        string            `json:"path"`
	PathType    PathType          `json:"pathType"`
	Backend     string            `json:"backend"` // Backend.Key; "" with Forward or Fixed
	Ingress     string            `json:"ingress"` // ns/name that declared it
	SSLRedirect int               `json:"sslRedirect,omitempty"`
	Rule        string            `json:"rule,omitempty"` // the actions/conditions name
	Conditions  []Condition       `json:"conditions,omitempty"`
	Forward     []WeightedBackend `json:"forward,omitempty"`
	Fixed       *FixedResponse    `json:"fixedResponse,omitempty"`
}

// BackendProtocol is how milvus-lb speaks to the endpoints.
type BackendProtocol string

const (
	BackendGRPC  BackendProtocol = "GRPC"  // HTTP/2; REST (HTTP/1.1) requests go as HTTP/1.1
	BackendHTTP2 BackendProtocol = "HTTP2" // HTTP/2 for everything
	BackendHTTP1 BackendProtocol = "HTTP1" // HTTP/1.1 for everything
)

// Algorithm is target-group-attributes load_balancing.algorithm.type.
type Algorithm string

const (
	RoundRobin               Algorithm = "round_robin"
	LeastOutstandingRequests Algorithm = "least_outstanding_requests"
	WeightedRandom           Algorithm = "weighted_random"
)

// Backend is one target group: a Service port and its endpoints, with the policies of the
// Ingress that references it. Its Key is "ns/service:port".
type Backend struct {
	Key         string          `json:"key"`
	Service     string          `json:"service"` // ns/name, for messages
	Port        string          `json:"port"`    // as written in the Ingress: number or name
	Protocol    BackendProtocol `json:"protocol"`
	TLS         bool            `json:"tls"` // backend-protocol: HTTPS
	Algorithm   Algorithm       `json:"algorithm"`
	Endpoints   []Endpoint      `json:"endpoints"`
	HealthCheck HealthCheck     `json:"healthCheck"`
	// DeregistrationDelay bounds how long in-flight calls may keep a removed endpoint, and
	// how long a draining balancer waits for them.
	DeregistrationDelay Duration `json:"deregistrationDelay"`
	SlowStart           Duration `json:"slowStart,omitempty"`

	Resilience Resilience `json:"resilience,omitzero"` // outliers, retries, limits: resilience.go
	Standby    *Standby   `json:"standby,omitempty"`   // a standby cluster for reads: standby.go
	Mirror     *Mirror    `json:"mirror,omitempty"`    // copies of calls to another backend: standby.go
}

// Endpoint is one address of a backend. Terminating endpoints get no new calls.
type Endpoint struct {
	Address     string `json:"address"` // host:port
	Ready       bool   `json:"ready"`
	Terminating bool   `json:"terminating,omitempty"`
}

// HealthCheckKind selects the active check.
type HealthCheckKind string

const (
	// CheckMilvus calls MilvusService/CheckHealth and requires is_healthy in the body.
	// It is the default when no healthcheck annotation is given.
	CheckMilvus HealthCheckKind = "milvus"
	// CheckGRPCHealth calls grpc.health.v1.Health/Check and requires SERVING in the body.
	CheckGRPCHealth HealthCheckKind = "grpc-health"
	// CheckGRPC calls Path and compares the gRPC status code with SuccessCodes, as the ALB
	// does (its default path /AWS.ALB/healthcheck, code 12).
	CheckGRPC HealthCheckKind = "grpc"
	// CheckHTTP sends GET Path and compares the HTTP status with SuccessCodes.
	CheckHTTP HealthCheckKind = "http"
	// CheckNone treats every ready endpoint as healthy.
	CheckNone HealthCheckKind = "none"
)

// HealthCheck is an active check of every endpoint of a backend.
type HealthCheck struct {
	Kind               HealthCheckKind `json:"kind"`
	Path               string          `json:"path,omitempty"`
	Port               string          `json:"port,omitempty"` // "traffic-port" or a number
	TLS                bool            `json:"tls,omitempty"`  // healthcheck-protocol HTTPS
	Interval           Duration        `json:"interval"`
	Timeout            Duration        `json:"timeout"`
	HealthyThreshold   int             `json:"healthyThreshold"`
	UnhealthyThreshold int             `json:"unhealthyThreshold"`
	SuccessCodes       string          `json:"successCodes,omitempty"` // "200", "200-299", "0,12"
}

// IngressStatus is what `get ingress` and the controller's status writer show.
type IngressStatus struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Class     string    `json:"class"`
	Hosts     []string  `json:"hosts"`
	Ports     []int     `json:"ports"` // the listener ports it is served on
	Served    bool      `json:"served"`
	Created   time.Time `json:"created,omitzero"`
	Source    string    `json:"source,omitempty"` // the file it came from, standalone only
}

// Duration marshals as a Go duration string so golden files read well.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
