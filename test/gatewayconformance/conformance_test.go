// Package gatewayconformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance, its GRPCRoute and HTTPRoute tests) against the
// milvus-lb controller, on the real kube-apiserver of internal/testkit/kubetest, with a
// stand-in for the Pods (standin_test.go). scripts/gateway-conformance.sh builds the
// suite's test binary, its echo server and the CRDs; docs/conformance.md has the results.
package gatewayconformance

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// The API server refuses EndpointSlice addresses on loopback, so the test runs in a
// network namespace of its own where 10.77.0.0/16 is local: the stand-in's Pods get
// addresses in 10.77.0.0/17, the controller listens on lbIP (the Gateways' ports 80 and
// 443, free there) and reports it as every Gateway's address; the suite sends its
// requests there.
const (
	subnet = "10.77.0.1/16"
	lbIP   = "10.77.255.1"
)

func TestMain(m *testing.M) { testenv.MainInNetns(m, subnet, "test/gatewayconformance") }

// features are the suite's feature names milvus-lb supports (docs/gateway-api.md): the
// core ones of Gateway, HTTPRoute, GRPCRoute and ReferenceGrant, and the extended
// matches and parentRef port it reads.
var features = []string{
	"Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant",
	"HTTPRouteQueryParamMatching", "HTTPRouteMethodMatching", "HTTPRouteParentRefPort",
}

// TestGatewayAPIConformance runs the suite's GRPCRoute and HTTPRoute tests and checks each
// result against want (conformance_results_test.go): a test that starts to pass or to
// fail fails this one, so the table in docs/conformance.md stays true.
func TestGatewayAPIConformance(t *testing.T) {
	dir := built(t)
	cluster := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	kubectl := func(args ...string) {
		t.Helper()
		if _, err := cluster.Kubectl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	// create, not apply: the CRDs are too large for apply's last-applied annotation.
	kubectl("create", "-f", filepath.Join(dir, "crds.yaml"))
	kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")
	root := testenv.Root(t)
	for _, f := range []string{"00-namespace.yaml", "10-rbac.yaml"} {
		kubectl("apply", "-f", filepath.Join(root, "deploy", f))
	}
	class := filepath.Join(t.TempDir(), "class.yaml")
	if err := os.WriteFile(class, []byte(gatewayClass), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl("apply", "-f", class)

	startStandIn(t, cluster.Client, filepath.Join(dir, "echo-basic"))
	startController(t, cluster.ControllerKubeconfig(t))

	got := runSuite(t, ctx, filepath.Join(dir, "conformance.test"), cluster.Kubeconfig)
	check(t, got)
}

// gatewayClass is the class the suite's Gateways name. Its backends are echo servers,
// not Milvus: no Milvus health check (the default) would ever pass, so the class asks
// for none, and EndpointSlice readiness decides, as a kubelet's readiness probe would.
const gatewayClass = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: milvus-lb
  annotations:
    milvus-lb.io/healthcheck-type: none
spec:
  controllerName: milvus-lb.io/gateway-controller
`

// built returns the directory scripts/gateway-conformance.sh builds into, keyed as the
// script keys it, so that a test never runs a suite of another pinned version.
func built(t *testing.T) string {
	root := testenv.Root(t)
	h := sha256.New()
	for _, f := range []string{"tools/gateway-conformance/go.mod", "tools/gateway-conformance/go.sum", "scripts/gateway-conformance.sh"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	dir := filepath.Join(testenv.CacheDir(), "gateway-conformance-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, ".ok")); err != nil {
		t.Fatalf("the conformance suite is not built (no %s): run scripts/gateway-conformance.sh", dir)
	}
	return dir
}

func startController(t *testing.T, kubeconfig string) {
	c := exec.Command(testenv.BuildMilvusLB(t), "controller",
		"--kubeconfig", kubeconfig,
		"--bind-address", lbIP,
		"--advertise-address", lbIP,
		"--admin-addr", net.JoinHostPort(lbIP, "9901"))
	c.Env = append(os.Environ(), "POD_NAME=milvus-lb-conformance", "POD_NAMESPACE="+kubetest.ControllerNamespace, "POD_IP="+lbIP)
	testenv.StartProcess(t, "milvus-lb controller", c, syscall.SIGTERM, 30*time.Second, true)
}

// result is one upstream test's outcome: PASS, FAIL or SKIP.
type result = string

var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): TestConformance/([A-Za-z0-9]+) \(`)

// runSuite runs the suite's own TestConformance, only its GRPCRoute and HTTPRoute tests,
// and returns each test's result. Its output goes to the test log as it comes.
func runSuite(t *testing.T, ctx context.Context, bin, kubeconfig string) map[string]result {
	args := []string{
		"-test.v", "-test.timeout", "9m",
		"-test.run", "^TestConformance$/^(GRPC|HTTPRoute)",
		"--gateway-class", "milvus-lb",
		"--supported-features", strings.Join(features, ","),
		"--cleanup-base-resources=false",
	}
	t.Logf("$ conformance.test %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Dir = t.TempDir()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]result{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		t.Log(sc.Text())
		if m := resultLine.FindStringSubmatch(sc.Text()); m != nil {
			got[m[2]] = m[1]
		}
	}
	err = cmd.Wait()
	if len(got) == 0 {
		t.Fatalf("conformance.test reported no GRPCRoute or HTTPRoute test (%v)", err)
	}
	return got
}

// check compares got with want, and logs the table.
func check(t *testing.T, got map[string]result) {
	var names []string
	for n := range got {
		names = append(names, n)
	}
	for n := range want {
		if _, ok := got[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		w, g := want[n], got[n]
		fmt.Fprintf(&b, "%-55s %-5s (want %s)\n", n, g, w.result)
		if g != w.result {
			t.Errorf("%s: %s, want %s (%s)", n, orNone(g), orNone(w.result), w.why)
		}
	}
	t.Logf("results:\n%s", b.String())
}

func orNone(s string) string {
	if s == "" {
		return "not run"
	}
	return s
}
