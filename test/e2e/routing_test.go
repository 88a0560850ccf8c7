package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// ingressHead is the guide's Ingress down to its own annotations, for tests to add theirs:
// %[1]s is the certificate's ARN, %[2]d the HTTPS port.
const ingressHead = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  namespace: milvus
  name: milvus-demo
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS":%[2]d}]'
    alb.ingress.kubernetes.io/certificate-arn: "%[1]s"
`

// routingIngress is the guide's Ingress with routes by what calls say: tenants' databases
// and log collections to cluster B (Service milvus-b), by milvus-lb's conditions and by the
// ALB's own http-header condition on the dbname metadata; reads that accept stale data to
// B as milvus-demo's standby cluster; everything else to the guide's
// milvus-demo; and a rate limit on one collection. %[1]s is the certificate's ARN, %[2]d
// the HTTPS port.
const routingIngress = ingressHead + `    alb.ingress.kubernetes.io/actions.tenant-b: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"milvus-b","servicePort":19530}]}}
    milvus-lb.io/conditions.tenant-b: >
      [{"field":"database","databaseConfig":{"values":["tenant_b"]}}]
    alb.ingress.kubernetes.io/actions.tenant-c: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"milvus-b","servicePort":19530}]}}
    alb.ingress.kubernetes.io/conditions.tenant-c: >
      [{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"dbname","values":["tenant_c"]}}]
    alb.ingress.kubernetes.io/actions.logs: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"milvus-b","servicePort":19530}]}}
    milvus-lb.io/conditions.logs: >
      [{"field":"collection","collectionConfig":{"values":["logs_*"]}}]
    milvus-lb.io/standby: '{"serviceName":"milvus-b","servicePort":19530}'
    milvus-lb.io/rate-limits: >
      [{"name":"limited-collection","collection":["limited"],"calls":0.2,"burst":5}]
spec:
  ingressClassName: alb
  rules:
    - host: milvus-demo.milvus.io
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: tenant-b
              port:
                name: use-annotation
        - path: /
          pathType: Prefix
          backend:
            service:
              name: tenant-c
              port:
                name: use-annotation
        - path: /
          pathType: Prefix
          backend:
            service:
              name: logs
              port:
                name: use-annotation
        - path: /
          pathType: Prefix
          backend:
            service:
              name: milvus-demo
              port:
                number: 19530
`

// clusterB is Service milvus-b with one milvus-lite as its proxy.
const clusterB = `---
apiVersion: v1
kind: Service
metadata:
  namespace: milvus
  name: milvus-b
spec:
  ports:
    - name: milvus
      port: 19530
      targetPort: %[1]d
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: milvus
  name: milvus-b-1
  labels:
    kubernetes.io/service-name: milvus-b
addressType: IPv4
ports:
  - name: milvus
    port: %[1]d
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
`

// TestRoutingRealMilvus routes the calls of pymilvus, then of the Go client, by database,
// collection and consistency level to two real Milvus servers standing for two clusters,
// over TLS as the guide connects, and refuses calls over a rate limit as Milvus does,
// which both clients ride through (the Go client with the SDK's RetryOnRateLimitInterceptor).
func TestRoutingRealMilvus(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	a, b := g.lite, testenv.StartMilvusLite(t)
	writeFile(t, g.ingressFile(), fmt.Sprintf(routingIngress, g.arn, g.port))
	writeFile(t, g.milvusFile(), fmt.Sprintf(milvusYAML, a.Port)+fmt.Sprintf(clusterB, b.Port))
	g.serve(t)
	testenv.RunClient(t, clientTimeout, "routing_check: PASS", testenv.Python(t),
		filepath.Join(testenv.Root(t), "test", "clients", "routing_check.py"),
		"--host", g.address, "--port", strconv.Itoa(g.port), "--server-name", host, "--ca", g.ca,
		"--direct-a", a.Addr, "--direct-b", b.Addr)
	// The Go client on what routing_check.py prepared (test/goclient/routing.go).
	testenv.RunClient(t, clientTimeout, "goclient: PASS", testenv.BuildGoClient(t), "-routing",
		"-addr", fmt.Sprintf("%s:%d", g.address, g.port), "-server-name", host, "-ca", g.ca, "-direct-a", a.Addr)
}
