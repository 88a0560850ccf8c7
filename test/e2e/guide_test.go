// Package e2e runs the user's story of the Milvus guide "Set up a Layer-7 Load Balancer for
// Milvus on AWS" end to end, with real parts only: a milvus-lite server (a real Milvus gRPC
// server), the milvus-lb binary built from this tree, a certificate imported with
// `milvus-lb cert import`, the guide's ingress.yaml, and the real clients (pymilvus, the Node
// SDK, the Go client) connecting with TLS and a server name, as the guide does.
//
// Needs scripts/setup.sh to have run (the tests fail, not skip, when it has not).
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The guide's names.
const (
	host      = "milvus-demo.milvus.io"
	namespace = "milvus"
	name      = "milvus-demo"
)

// clientTimeout bounds one client program's whole session (connect, create, insert, index,
// load, search, query, delete, drop), typically 2-5 s against milvus-lite.
const clientTimeout = 2 * time.Minute

// guide is the state of one run through the guide's steps.
type guide struct {
	dir      string // where the user keeps Certificate.pem, ingress.yaml, ...
	stateDir string // milvus-lb --state-dir
	ca       string // the CA clients trust (server_pem_path)
	arn      string // what `cert import` printed
	port     int    // the HTTPS listen port
	lite     *testenv.MilvusLite
	lites    []*testenv.MilvusLite // lite and any others prepareGuideLites started
	lb       *testenv.LB
	address  string // ADDRESS from `get ingress`
}

// milvusYAML is what a Milvus cluster has in Kubernetes and the guide takes as given: the
// Service milvus-demo (port 19530, named milvus) and the EndpointSlice listing its proxy
// pods, here one milvus-lite on 127.0.0.1. The Service maps 19530 to the pod's port, as
// the Helm chart's targetPort does.
const milvusYAML = `apiVersion: v1
kind: Service
metadata:
  namespace: milvus
  name: milvus-demo
  labels:
    app.kubernetes.io/name: milvus
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: milvus
    component: proxy
  ports:
    - name: milvus
      port: 19530
      protocol: TCP
      targetPort: %[1]d
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: milvus
  name: milvus-demo-x7k2p
  labels:
    kubernetes.io/service-name: milvus-demo
addressType: IPv4
ports:
  - name: milvus
    port: %[1]d
    protocol: TCP
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
`

// runGuide does the guide's steps 1-4 with milvus-lb on HTTPS port `port`: a Milvus is
// running; a certificate is imported and its ARN printed; ingress.yaml names that ARN;
// milvus-lb serves it; `get ingress` shows ADDRESS and PORTS.
func runGuide(t *testing.T, port int) *guide {
	t.Helper()
	g := prepareGuide(t, port)
	g.serve(t)
	return g
}

// prepareGuide does the guide's steps 1-3: Milvus runs, the certificate is imported, and
// ingress.yaml and milvus.yaml are written.
func prepareGuide(t *testing.T, port int) *guide {
	t.Helper()
	return prepareGuideLites(t, port, 1)
}

// prepareGuideLites is prepareGuide with n milvus-lite servers started at once; g.lite is
// the first, the one milvus.yaml names.
func prepareGuideLites(t *testing.T, port, n int) *guide {
	t.Helper()
	g := &guide{dir: t.TempDir(), port: port}
	g.stateDir = filepath.Join(g.dir, "state")

	// 1. A Milvus cluster already runs.
	g.lites = testenv.StartMilvusLites(t, n)
	g.lite = g.lites[0]

	// 2. Import the certificate: the guide's three files, with fileb:// as aws acm takes them.
	g.ca = certtest.WriteGuideFiles(t, g.dir, host)
	out := testenv.MilvusLB(t, "cert", "import",
		"--certificate", "fileb://"+filepath.Join(g.dir, certtest.CertificateFile),
		"--certificate-chain", "fileb://"+filepath.Join(g.dir, certtest.CertificateChainFile),
		"--private-key", "fileb://"+filepath.Join(g.dir, certtest.PrivateKeyFile),
		"--state-dir", g.stateDir)
	var imported struct{ CertificateArn string }
	if err := json.Unmarshal([]byte(out), &imported); err != nil || !strings.HasPrefix(imported.CertificateArn, "arn:") {
		t.Fatalf(`cert import printed %q, want JSON {"CertificateArn": "arn:..."} (err %v)`, out, err)
	}
	g.arn = imported.CertificateArn
	t.Logf("cert import: %s", g.arn)

	// 3. Write ingress.yaml with that ARN, beside the cluster's own objects.
	ingressFile := filepath.Join(g.dir, "ingress.yaml")
	milvusFile := filepath.Join(g.dir, "milvus.yaml")
	writeFile(t, ingressFile, testenv.GuideIngress(t, g.arn, port))
	writeFile(t, milvusFile, fmt.Sprintf(milvusYAML, g.lite.Port))
	return g
}

func (g *guide) ingressFile() string { return filepath.Join(g.dir, "ingress.yaml") }
func (g *guide) milvusFile() string  { return filepath.Join(g.dir, "milvus.yaml") }

// serve does step 4: milvus-lb serves the files (with more flags, if given) and `get
// ingress` shows ADDRESS and PORTS.
func (g *guide) serve(t *testing.T, flags ...string) {
	t.Helper()
	port := g.port
	ingressFile, milvusFile := g.ingressFile(), g.milvusFile()

	// 4. Serve it and wait for ADDRESS, as `kubectl get ingress -w` does in the guide.
	g.lb = testenv.StartLB(t, append([]string{"-f", ingressFile, "-f", milvusFile, "--state-dir", g.stateDir}, flags...)...)
	row := g.lb.WaitAddress(t, namespace, name)
	if row.Class != "alb" || !slices.Equal(row.Hosts, []string{host}) || !slices.Equal(row.Ports, []int{port}) {
		t.Fatalf("get ingress row = %+v, want class alb, hosts [%s], ports [%d]", row, host, port)
	}
	g.address = row.Address
	if g.address != "127.0.0.1" {
		t.Fatalf("ADDRESS = %q, want the --advertise-address 127.0.0.1", g.address)
	}
	checkTable(t, testenv.MilvusLB(t, "get", "ingress", "--admin-addr", g.lb.AdminAddr), g.address, port)
}

// checkTable checks the kubectl-style table a user reads in step 4.
func checkTable(t *testing.T, table, address string, port int) {
	t.Helper()
	t.Logf("$ milvus-lb get ingress\n%s", table)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 {
		t.Fatalf("get ingress printed %d lines, want a header and one row:\n%s", len(lines), table)
	}
	if h := strings.Fields(lines[0]); !slices.Equal(h, []string{"NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"}) {
		t.Errorf("header = %v, want kubectl's NAME CLASS HOSTS ADDRESS PORTS AGE", h)
	}
	row := strings.Fields(lines[1])
	want := []string{name, "alb", host, address, strconv.Itoa(port)}
	if len(row) != 6 || !slices.Equal(row[:5], want) {
		t.Errorf("row = %v, want %v followed by an AGE", row, want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pymilvus runs the guide's snippet and the MilvusClient flow through the balancer.
func (g *guide) pymilvus(t *testing.T) {
	argv := append(testenv.GuideCheck(t), "--host", g.address, "--port", strconv.Itoa(g.port),
		"--server-name", host, "--ca", g.ca)
	testenv.RunClient(t, clientTimeout, "guide_check: PASS", argv...)
}

func (g *guide) node(t *testing.T) {
	testenv.RunClient(t, clientTimeout, "nodeclient: PASS", "node", testenv.NodeCheck(t),
		"--address", fmt.Sprintf("%s:%d", g.address, g.port), "--server-name", host, "--ca", g.ca)
}

func (g *guide) goClient(t *testing.T) {
	testenv.RunClient(t, clientTimeout, "goclient: PASS", testenv.BuildGoClient(t),
		"-addr", fmt.Sprintf("%s:%d", g.address, g.port), "-server-name", host, "-ca", g.ca)
}

// TestGuide is the guide end to end on a free port, then each real client through it with
// TLS and server_name: pymilvus (the guide's snippet, then MilvusClient), the Node SDK and
// the Go client, at the same time, against one balancer and one Milvus.
func TestGuide(t *testing.T) {
	g := runGuide(t, testenv.FreePort(t))
	t.Run("clients", func(t *testing.T) {
		t.Run("pymilvus", func(t *testing.T) { t.Parallel(); g.pymilvus(t) })
		t.Run("node", func(t *testing.T) { t.Parallel(); g.node(t) })
		t.Run("go", func(t *testing.T) { t.Parallel(); g.goClient(t) })
	})
}

// TestGuideVerbatimPort443 serves the guide's manifest exactly as printed, HTTPS on 443,
// and connects as the guide does, port "443". It needs the right to bind 443 (root, as in
// CI) and the port free.
func TestGuideVerbatimPort443(t *testing.T) {
	if !testenv.PortFree(443) {
		t.Skip("127.0.0.1:443 cannot be bound here (in use, or not root); TestGuide covers the same steps on a free port")
	}
	g := runGuide(t, 443)
	g.pymilvus(t)
}

// TestClientsDirect runs the three client programs straight against milvus-lite without
// TLS. It proves the programs and the pinned SDKs themselves work, so that a failure of
// TestGuide points at milvus-lb.
func TestClientsDirect(t *testing.T) {
	lite := testenv.StartMilvusLite(t)
	t.Run("pymilvus", func(t *testing.T) {
		t.Parallel()
		argv := append(testenv.GuideCheck(t), "--host", "127.0.0.1", "--port", strconv.Itoa(lite.Port), "--plain")
		testenv.RunClient(t, clientTimeout, "guide_check: PASS", argv...)
	})
	t.Run("node", func(t *testing.T) {
		t.Parallel()
		testenv.RunClient(t, clientTimeout, "nodeclient: PASS", "node", testenv.NodeCheck(t), "--address", lite.Addr, "--plain")
	})
	t.Run("go", func(t *testing.T) {
		t.Parallel()
		testenv.RunClient(t, clientTimeout, "goclient: PASS", testenv.BuildGoClient(t), "-addr", lite.Addr, "-plain")
	})
}
