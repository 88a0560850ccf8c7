package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// brokenRoute is a GRPCRoute whose only backend does not exist.
const brokenRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: broken
  namespace: milvus
spec:
  parentRefs:
  - name: milvus-demo
  rules:
  - matches:
    - method: {service: milvus.proto.milvus.MilvusService, method: DropAlias}
    backendRefs:
    - {name: no-such-service, port: 19530}
`

// The guide's setup as a Gateway and a GRPCRoute (examples/gateway-api/gateway.yaml)
// against a real API server with the Gateway API CRDs applied: `kubectl get gateway`
// shows the controller's address and Programmed True, pymilvus works through it with
// TLS and server_name, and a route with a missing backend gets ResolvedRefs False
// (BackendNotFound) while the guide's route keeps serving.
func TestControllerGatewayAPI(t *testing.T) {
	cluster, dir, kubectl, apply := startCluster(t)
	root := repoRoot(t)
	for _, f := range []string{"00-namespace.yaml", "10-rbac.yaml", "50-service.yaml"} {
		kubectl("apply", "-f", filepath.Join(root, "deploy", f))
	}
	// The user installs the CRDs before starting the controller.
	kubectl("apply", "-f", filepath.Join(root, "test", "testdata", "gateway-api", "crds.yaml"))
	kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")

	startLite(t, fmt.Sprintf(liteIP, 1))
	apply("milvus.yaml", milvusService+"---\n"+slice("1"))
	ca := certtest.WriteGuideFiles(t, dir, host)
	leaf, _ := os.ReadFile(filepath.Join(dir, certtest.CertificateFile))
	chain, _ := os.ReadFile(filepath.Join(dir, certtest.CertificateChainFile))
	full := filepath.Join(dir, "fullchain.pem")
	if err := os.WriteFile(full, append(leaf, chain...), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl("-n", "milvus", "create", "secret", "tls", "milvus-demo-tls", "--cert", full, "--key", filepath.Join(dir, certtest.PrivateKeyFile))

	startController(t, cluster.ControllerKubeconfig(t), "milvus-lb-a", lbA)
	kubectl("apply", "-f", filepath.Join(root, "examples", "gateway-api", "gateway.yaml"))

	// kubectl get gateway: ADDRESS and PROGRAMMED, as a user watches for them.
	row := waitRow(t, kubectl, []string{"-n", "milvus", "get", "gateway", "milvus-demo", "--no-headers"},
		func(f []string) bool { return len(f) >= 4 && f[2] == lbA && f[3] == "True" })
	t.Logf("$ kubectl -n milvus get gateway milvus-demo\n%s", strings.Join(row, " "))
	waitJSONPath(t, kubectl, []string{"get", "gatewayclass", "milvus-lb"}, `{.status.conditions[?(@.type=="Accepted")].status}`, "True")
	waitJSONPath(t, kubectl, []string{"-n", "milvus", "get", "grpcroute", "milvus-demo"},
		`{.status.parents[0].conditions[?(@.type=="Accepted")].status}/{.status.parents[0].controllerName}`, "True/milvus-lb.io/gateway-controller")
	waitJSONPath(t, kubectl, []string{"-n", "milvus", "get", "gateway", "milvus-demo"},
		`{.status.listeners[0].attachedRoutes}`, "1")

	argv := append(testenv.GuideCheck(t), "--host", lbA, "--port", strconv.Itoa(listenPort), "--server-name", host, "--ca", ca)
	testenv.RunClient(t, 2*time.Minute, "guide_check: PASS", argv...)

	apply("broken.yaml", brokenRoute)
	waitJSONPath(t, kubectl, []string{"-n", "milvus", "get", "grpcroute", "broken"},
		`{.status.parents[0].conditions[?(@.type=="ResolvedRefs")].status}/{.status.parents[0].conditions[?(@.type=="ResolvedRefs")].reason}`, "False/BackendNotFound")
	testenv.RunClient(t, 2*time.Minute, "guide_check: PASS", argv...)
}

// waitRow runs kubectl until the first line's fields satisfy ok, and returns them.
func waitRow(t *testing.T, kubectl func(...string) string, args []string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var f []string
	for time.Now().Before(deadline) {
		f = strings.Fields(lastLine(kubectl(args...)))
		if ok(f) {
			return f
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("kubectl %s: %v after 30 s", strings.Join(args, " "), f)
	return nil
}

// waitJSONPath waits until kubectl args -o jsonpath=path prints want.
func waitJSONPath(t *testing.T, kubectl func(...string) string, args []string, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = strings.TrimSpace(kubectl(append(args, "-o", "jsonpath="+path)...))
		if got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("kubectl %s -o jsonpath=%s: %q after 30 s, want %q", strings.Join(args, " "), path, got, want)
}
