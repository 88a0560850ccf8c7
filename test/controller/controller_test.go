// Package controller runs the Milvus guide's steps against a real Kubernetes API server
// with `milvus-lb controller` in place of the AWS Load Balancer Controller: etcd and
// kube-apiserver (internal/testkit/kubetest), the RBAC objects of deploy/, two controller
// replicas with leader election, milvus-lite servers as the Milvus proxies, and pymilvus
// connecting as the guide does.
//
// The API server refuses EndpointSlice addresses on loopback (127.0.0.0/8), so the test
// binary re-runs itself in a network namespace of its own (testenv.MainInNetns, as root)
// where 10.200.0.0/24 is local: every socket stays inside, and nothing listens on a real
// interface. Needs scripts/setup.sh and scripts/kube-apiserver.sh to have run.
package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// The namespace's addresses: 10.200.0.0/24 is local on its loopback device.
const (
	subnet = "10.200.0.1/24"
	liteIP = "10.200.0.%d" // milvus-lite N (1, 2, 3): the "pods" of Service milvus-demo
	lbA    = "10.200.0.101"
	lbB    = "10.200.0.102"
)

func TestMain(m *testing.M) { testenv.MainInNetns(m, subnet, "test/controller") }

const (
	host       = "milvus-demo.milvus.io"
	listenPort = 443 // the guide's port: free in our own network namespace
)

// milvusYAML is what the Milvus Helm chart and the EndpointSlice controller would have
// made: the Service and one slice listing its proxies.
const milvusService = `apiVersion: v1
kind: Namespace
metadata:
  name: milvus
---
apiVersion: v1
kind: Service
metadata:
  namespace: milvus
  name: milvus-demo
spec:
  selector:
    app.kubernetes.io/name: milvus
    component: proxy
  ports:
    - name: milvus
      port: 19530
      targetPort: 19530
`

// slice renders the EndpointSlice of milvus-demo; eps are "N" (ready) or "N:terminating"
// or "N:notready" for milvus-lite N.
func slice(eps ...string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: milvus
  name: milvus-demo-abcde
  labels:
    kubernetes.io/service-name: milvus-demo
addressType: IPv4
ports:
  - name: milvus
    port: 19530
    protocol: TCP
endpoints:
`)
	for _, ep := range eps {
		n, state, _ := strings.Cut(ep, ":")
		ready, serving, terminating := true, true, false
		switch state {
		case "terminating":
			ready, terminating = false, true
		case "notready":
			ready, serving = false, false
		}
		fmt.Fprintf(&b, "  - addresses: [%q]\n    conditions: {ready: %t, serving: %t, terminating: %t}\n",
			fmt.Sprintf(liteIP, mustAtoi(n)), ready, serving, terminating)
	}
	return b.String()
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// TestControllerGuide is the guide in a cluster: deploy/ is applied, the certificate is
// imported into the cluster, ingress.yaml is applied with kubectl, ADDRESS appears in
// `kubectl get ingress`, pymilvus works through it, endpoint changes apply within a
// second without failing calls, a broken Ingress gets an Event without disturbing the
// others, and when the leader dies the other replica takes over the status.
func TestControllerGuide(t *testing.T) {
	cluster, dir, kubectl, apply := startCluster(t)

	// The controller's RBAC, namespace and IngressClasses, as an administrator installs
	// them (the Deployment needs a kubelet; the replicas run here as processes instead).
	root := repoRoot(t)
	for _, f := range []string{"00-namespace.yaml", "10-rbac.yaml", "20-ingressclass.yaml", "50-service.yaml"} {
		kubectl("apply", "-f", filepath.Join(root, "deploy", f))
	}

	// 1. Milvus runs. Each milvus-lite keeps its own data, unlike the proxies of one
	// Milvus, so pymilvus (which creates a collection and reads it back) runs while the
	// Service has a single endpoint; the endpoint changes below use a stateless call.
	lites := map[int]*testenv.Process{1: startLite(t, fmt.Sprintf(liteIP, 1))}
	apply("milvus.yaml", milvusService+"---\n"+slice("1"))

	// 2. The certificate goes into the cluster; the ARN is printed.
	ca := certtest.WriteGuideFiles(t, dir, host)
	out := testenv.MilvusLB(t, "cert", "import",
		"--certificate", "fileb://"+filepath.Join(dir, certtest.CertificateFile),
		"--certificate-chain", "fileb://"+filepath.Join(dir, certtest.CertificateChainFile),
		"--private-key", "fileb://"+filepath.Join(dir, certtest.PrivateKeyFile),
		"--kubeconfig", cluster.Kubeconfig, "--namespace", kubetest.ControllerNamespace)
	var imported struct{ CertificateArn string }
	if err := json.Unmarshal([]byte(out), &imported); err != nil || !strings.HasPrefix(imported.CertificateArn, "arn:") {
		t.Fatalf(`cert import printed %q, want {"CertificateArn": "arn:..."} (%v)`, out, err)
	}

	// Two replicas, as the Deployment runs them, with the ServiceAccount's rights only.
	kubeconfig := cluster.ControllerKubeconfig(t)
	replicas := map[string]*testenv.Process{
		lbA: startController(t, kubeconfig, "milvus-lb-a", lbA),
		lbB: startController(t, kubeconfig, "milvus-lb-b", lbB),
	}

	// 3-4. kubectl apply -f ingress.yaml; watch until ADDRESS fills in.
	apply("ingress.yaml", testenv.GuideIngress(t, imported.CertificateArn, listenPort))
	leader := waitAddress(t, cluster, "", lbA, lbB)
	// The guide's own command, without -w.
	table := kubectl("-f", filepath.Join(dir, "ingress.yaml"), "get")
	t.Logf("$ kubectl -f ingress.yaml get\n%s", table)
	if row := strings.Fields(lastLine(table)); len(row) != 6 || row[0] != "milvus-demo" || row[1] != "alb" || row[2] != host || row[3] != leader {
		t.Errorf("kubectl -f ingress.yaml get: row %v, want NAME milvus-demo, CLASS alb, HOSTS %s, ADDRESS %s", row, host, leader)
	}

	// 5. pymilvus as the guide connects, through the address shown.
	argv := append(testenv.GuideCheck(t), "--host", leader, "--port", strconv.Itoa(listenPort), "--server-name", host, "--ca", ca)
	testenv.RunClient(t, 2*time.Minute, "guide_check: PASS", argv...)

	// Endpoint changes, under a steady stream of calls through the leader's address
	// that must all succeed.
	calls := startCalls(t, net.JoinHostPort(leader, strconv.Itoa(listenPort)), ca)
	lites[2] = startLite(t, fmt.Sprintf(liteIP, 2))
	lites[3] = startLite(t, fmt.Sprintf(liteIP, 3))
	for _, step := range []struct {
		what string
		eps  []string
		want []string // the balancers' endpoints afterwards: "N" takes new calls, "N-" does not
		kill int      // milvus-lite that no call may reach any more after the change
	}{
		{"add 2 and 3", []string{"1", "2", "3"}, []string{"1", "2", "3"}, 0},
		{"2 not ready", []string{"1", "2:notready", "3"}, []string{"1", "2-", "3"}, 2},
		{"1 terminating", []string{"1:terminating", "3"}, []string{"1-", "3"}, 1},
		{"1 removed", []string{"3"}, []string{"3"}, 0},
	} {
		before := calls.ok.Load()
		apply("slice.yaml", slice(step.eps...))
		// Within a second both balancers have exactly these endpoints in these states.
		applied := time.Now()
		var want []string
		for _, e := range step.want {
			n, off := strings.CutSuffix(e, "-")
			want = append(want, fmt.Sprintf("%s ready=%t", net.JoinHostPort(fmt.Sprintf(liteIP, mustAtoi(n)), "19530"), !off))
		}
		for _, lb := range []string{lbA, lbB} {
			for {
				got, err := endpoints(lb)
				if err == nil && slices.Equal(got, want) {
					break
				}
				if time.Since(applied) > time.Second {
					t.Fatalf("%s: %s has endpoints %v (%v) a second after the change, want %v", step.what, lb, got, err, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		t.Logf("%s: both balancers changed within %s", step.what, time.Since(applied).Round(time.Millisecond))
		// The endpoint taken out may now go away, and no call may notice: none fails,
		// and none even has to be retried on another endpoint.
		if step.kill != 0 {
			lites[step.kill].Kill()
		}
		time.Sleep(500 * time.Millisecond)
		if calls.ok.Load() == before {
			t.Fatalf("%s: no call succeeded", step.what)
		}
		if err := calls.failure(); err != nil {
			t.Fatalf("%s: a call failed: %v", step.what, err)
		}
		if n, err := retries(leader); err != nil || n != 0 {
			t.Fatalf("%s: %v calls were retried on another endpoint (%v): one went to an endpoint that was taken out", step.what, n, err)
		}
	}
	calls.stop()
	t.Logf("%d calls, none failed or retried, through four endpoint changes", calls.ok.Load())

	// Only milvus-lite 3 is left: pymilvus works again. A broken Ingress gets an Event
	// and disturbs nobody.
	apply("broken.yaml", strings.NewReplacer("name: milvus-demo\n  annotations", "name: broken\n  annotations",
		"host: milvus-demo.milvus.io", "host: broken.milvus.io", "name: milvus-demo\n", "name: no-such-service\n").
		Replace(testenv.GuideIngress(t, imported.CertificateArn, listenPort)))
	waitEvent(t, cluster, "broken", "FailedBuildModel")
	testenv.RunClient(t, 2*time.Minute, "guide_check: PASS", argv...)

	// The leader dies without a goodbye; the other replica writes its own address
	// within the lease duration (3 s here).
	killed := time.Now()
	replicas[leader].Kill()
	other := map[string]string{lbA: lbB, lbB: lbA}[leader]
	waitAddress(t, cluster, leader, other)
	t.Logf("ADDRESS moved from %s to %s %s after the leader was killed", leader, other, time.Since(killed).Round(100*time.Millisecond))
	argv = append(testenv.GuideCheck(t), "--host", other, "--port", strconv.Itoa(listenPort), "--server-name", host, "--ca", ca)
	testenv.RunClient(t, 2*time.Minute, "guide_check: PASS", argv...)
}

// startCluster starts an API server for the test, with kubectl (failing the test on an
// error) and apply (a manifest written into dir as name, then applied), both bounded by
// five minutes.
func startCluster(t *testing.T) (cluster *kubetest.Cluster, dir string, kubectl func(...string) string, apply func(name, manifest string)) {
	cluster = kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	dir = t.TempDir()
	kubectl = func(args ...string) string {
		t.Helper()
		out, err := cluster.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	apply = func(name, manifest string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("$ kubectl apply -f %s\n%s", name, kubectl("apply", "-f", path))
	}
	return cluster, dir, kubectl, apply
}

// endpoints lists the endpoints of milvus/milvus-demo:19530 in the balancer at ip, from
// its admin status API, as "address ready=BOOL" (ready: it takes new calls).
func endpoints(ip string) ([]string, error) {
	var st struct {
		Backends []struct {
			Key       string
			Endpoints []struct {
				Address string
				Ready   bool
			}
		}
	}
	if err := getJSON("http://"+net.JoinHostPort(ip, "9901")+"/api/v1/status", &st); err != nil {
		return nil, err
	}
	var out []string
	for _, b := range st.Backends {
		if b.Key != "milvus/milvus-demo:19530" {
			continue
		}
		for _, ep := range b.Endpoints {
			out = append(out, fmt.Sprintf("%s ready=%t", ep.Address, ep.Ready))
		}
	}
	slices.Sort(out)
	return out, nil
}

// retries sums milvus_lb_retries_total of the balancer at ip.
func retries(ip string) (float64, error) {
	resp, err := http.Get("http://" + net.JoinHostPort(ip, "9901") + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "milvus_lb_retries_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// startLite runs milvus-lite on ip:19530, as a Milvus proxy pod listens on its pod IP.
func startLite(t *testing.T, ip string) *testenv.Process {
	t.Helper()
	c := testenv.MilvusLiteCommand(t, filepath.Join(t.TempDir(), "milvus-lite"), ip, 19530)
	p := testenv.StartProcess(t, "milvus-lite "+ip, c, syscall.SIGINT, 15*time.Second, false)
	addr := net.JoinHostPort(ip, "19530")
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := testenv.CheckHealth(addr)
		if err == nil {
			return p
		}
		select {
		case <-p.Exited():
			t.Fatalf("milvus-lite on %s exited: %v\n%s", addr, err, p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("milvus-lite on %s: %v\n%s", addr, err, p.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startController runs one replica, as deploy/30-deployment.yaml does, with a short
// lease so that the takeover fits in a test.
func startController(t *testing.T, kubeconfig, pod, ip string) *testenv.Process {
	t.Helper()
	c := exec.Command(testenv.BuildMilvusLB(t), "controller",
		"--kubeconfig", kubeconfig,
		"--leader-elect",
		"--leader-election-lease-duration", "3s",
		"--leader-election-renew-deadline", "2s",
		"--leader-election-retry-period", "250ms",
		"--bind-address", ip,
		"--advertise-address", ip,
		"--admin-addr", net.JoinHostPort(ip, "9901"))
	c.Env = append(os.Environ(), "POD_NAME="+pod, "POD_NAMESPACE="+kubetest.ControllerNamespace, "POD_IP="+ip)
	p := testenv.StartProcess(t, pod, c, syscall.SIGTERM, 30*time.Second, true)
	return p
}

// waitAddress waits until `kubectl get ingress milvus-demo` shows one of want as ADDRESS
// (and not not) and returns it.
func waitAddress(t *testing.T, cluster *kubetest.Cluster, not string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ing, err := cluster.Client.NetworkingV1().Ingresses("milvus").Get(context.Background(), "milvus-demo", metav1.GetOptions{})
		if err == nil && len(ing.Status.LoadBalancer.Ingress) == 1 {
			last = ing.Status.LoadBalancer.Ingress[0].IP
			for _, w := range want {
				if last == w && last != not {
					return last
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("ADDRESS is %q after 30 s, want one of %v", last, want)
	return ""
}

func waitEvent(t *testing.T, cluster *kubetest.Cluster, ingress, reason string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		list, err := cluster.Client.CoreV1().Events("milvus").List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + ingress + ",reason=" + reason,
		})
		if err == nil && len(list.Items) > 0 {
			t.Logf("Event on %s: %s %s: %s", ingress, list.Items[0].Type, reason, list.Items[0].Message)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s Event on Ingress %s", reason, ingress)
}

// calls sends CheckHealth through the balancer over TLS, one after another, until
// stopped, and keeps the first failure.
type calls struct {
	ok     atomic.Int64
	err    atomic.Pointer[error]
	cancel context.CancelFunc
	done   chan struct{}
}

func startCalls(t *testing.T, addr, caFile string) *calls {
	t.Helper()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509Pool(t, ca)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: host})))
	if err != nil {
		t.Fatal(err)
	}
	client := milvuspb.NewMilvusServiceClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	c := &calls{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer conn.Close()
		for ctx.Err() == nil {
			callCtx, cancelCall := context.WithTimeout(ctx, 5*time.Second)
			resp, err := client.CheckHealth(callCtx, &milvuspb.CheckHealthRequest{})
			cancelCall()
			if ctx.Err() != nil {
				return
			}
			if err == nil && !resp.GetIsHealthy() {
				err = fmt.Errorf("CheckHealth: not healthy: %v", resp.GetReasons())
			}
			if err != nil {
				c.err.CompareAndSwap(nil, &err)
				continue
			}
			c.ok.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *calls) failure() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *calls) stop() {
	c.cancel()
	<-c.done
}

func x509Pool(t *testing.T, pemCerts []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCerts) {
		t.Fatal("no certificate in the CA file")
	}
	return pool
}
