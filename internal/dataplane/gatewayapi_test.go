package dataplane_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/reload"
	"github.com/milvus-lb/milvus-lb/internal/source"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// gatewayYAML is a Gateway with an HTTP and an HTTPS listener on the test's ports, a
// GRPCRoute splitting calls 90/10 between two Services, a GRPCRoute whose only backend
// does not exist, and an HTTPRoute for Milvus REST. %[1]d, %[2]d: the ports; %[3]s,
// %[4]s: the two Services' endpoints (host, port).
const gatewayYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: milvus-lb}
spec: {controllerName: milvus-lb.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: milvus-demo, namespace: milvus}
spec:
  gatewayClassName: milvus-lb
  listeners:
  - {name: h2c, protocol: HTTP, port: %[1]d, hostname: milvus-demo.milvus.io}
  - name: https
    protocol: HTTPS
    port: %[2]d
    hostname: milvus-demo.milvus.io
    tls: {certificateRefs: [{name: milvus-demo-tls}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: canary, namespace: milvus}
spec:
  parentRefs: [{name: milvus-demo}]
  rules:
  - backendRefs:
    - {name: milvus-blue, port: 19530, weight: 90}
    - {name: milvus-green, port: 19530, weight: 10}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: broken, namespace: milvus}
spec:
  parentRefs: [{name: milvus-demo}]
  rules:
  - matches: [{method: {service: milvus.proto.milvus.MilvusService, method: DropCollection}}]
    backendRefs: [{name: milvus-gone, port: 19530}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rest, namespace: milvus}
spec:
  parentRefs: [{name: milvus-demo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2/vectordb}}]
    backendRefs: [{name: milvus-green, port: 19530}]
---
apiVersion: v1
kind: Service
metadata: {name: milvus-blue, namespace: milvus}
spec: {ports: [{name: milvus, port: 19530}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: milvus-blue-1, namespace: milvus, labels: {kubernetes.io/service-name: milvus-blue}}
addressType: IPv4
ports: [{name: milvus, port: %[4]s}]
endpoints: [{addresses: ["%[3]s"], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: milvus-green, namespace: milvus}
spec: {ports: [{name: milvus, port: 19530}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: milvus-green-1, namespace: milvus, labels: {kubernetes.io/service-name: milvus-green}}
addressType: IPv4
ports: [{name: milvus, port: %[6]s}]
endpoints: [{addresses: ["%[5]s"], conditions: {ready: true}}]
`

// gatewayObjects are gatewayYAML's objects for blue and green, with the Secret of a
// certificate of the test's CA.
func (l *lb) gatewayObjects(blue, green *fakemilvus.Server) ingress.Objects {
	l.t.Helper()
	bh, bp := splitAddr(l.t, blue.Addr())
	gh, gp := splitAddr(l.t, green.Addr())
	objs, problems := source.ParseManifest("gateway.yaml", []byte(fmt.Sprintf(gatewayYAML, l.plain, l.tlsPort, bh, bp, gh, gp)))
	if len(problems) > 0 {
		l.t.Fatal(problems.Report())
	}
	certPEM, keyPEM := l.ca.Issue(l.t, host)
	objs.Secrets = append(objs.Secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "milvus", Name: "milvus-demo-tls"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}})
	return objs
}

func splitAddr(t *testing.T, addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// The same data path serves a Gateway and its routes: 2,000 calls split 90/10 between two
// Services as the GRPCRoute's weights say (within 5 %), over h2c and over TLS with SNI; a
// route whose backend is missing answers UNAVAILABLE while the others keep serving; the
// HTTPRoute takes Milvus REST.
func TestGatewayAPIWeightsAndMissingBackend(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{REST: true})
	blue, green := bs[0], bs[1]
	l := newLB(t, bs, nil)
	objs := l.gatewayObjects(blue, green)
	// As the controller runs it: a broken route does not refuse the others.
	res := reload.New(reload.Options{Gateway: l.Plane.Gateway}).Reload(ctxTimeout(t, 10*time.Second), objs, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if errs := res.Problems.Errors(); len(errs) != 1 || !strings.Contains(errs[0].String(), "Service milvus/milvus-gone not found") {
		t.Fatalf("problems: %s", res.Problems.Report())
	}
	waitHealthy(t, l, 2)

	c, _ := l.dial()
	ctx := ctxTimeout(t, 60*time.Second)
	for range 2000 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if b, g := blue.Count(versionMethod), green.Count(versionMethod); math.Abs(float64(g)-200)/200 > 0.05 || b+g != 2000 {
		t.Errorf("blue %d, green %d of 2000 calls; want 1800/200 within 5 %%", b, g)
	}
	if _, err := l.dialTLS().GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("over TLS with SNI %s: %v", host, err)
	}
	_, err := c.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "c1"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("the route with a missing backend: %v, want UNAVAILABLE", err)
	}
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("after it, the other route: %v", err)
	}

	resp, body := listCollections(t, l.plain)
	if resp.StatusCode != 200 || resp.Header.Get("X-Fake-Backend") != green.Name() {
		t.Errorf("REST through the HTTPRoute: %d from %q: %s", resp.StatusCode, resp.Header.Get("X-Fake-Backend"), body)
	}
}

// waitHealthy waits for the first health checks (the Milvus CheckHealth a Gateway's
// backends get) to find n endpoints healthy.
func waitHealthy(t *testing.T, l *lb, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		healthy := 0
		for _, ep := range l.Plane.Registry.All() {
			if ep.Checked() && ep.Healthy() {
				healthy++
			}
		}
		if healthy >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d endpoints became healthy", n)
}
