package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// manifests writes an Ingress serving host on an h2c port in front of the given backend
// addresses, and returns the file path.
func manifests(t *testing.T, port int, annotations string, backends ...string) string {
	t.Helper()
	var eps strings.Builder
	for _, b := range backends {
		h, p, _ := net.SplitHostPort(b)
		fmt.Fprintf(&eps, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: milvus-demo-%s
  namespace: milvus
  labels: {kubernetes.io/service-name: milvus-demo}
addressType: IPv4
ports: [{name: milvus, port: %s}]
endpoints:
  - addresses: ["%s"]
    conditions: {ready: true}
`, p, p, h)
	}
	doc := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: milvus-demo
  namespace: milvus
  annotations:
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP":%d}]'
%s
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
                name: milvus-demo
                port:
                  number: 19530
---
apiVersion: v1
kind: Service
metadata: {name: milvus-demo, namespace: milvus}
spec:
  ports: [{name: milvus, port: 19530}]
%s`, port, annotations, eps.String())
	path := filepath.Join(t.TempDir(), "milvus.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SIGTERM: stop accepting, fail readiness, GOAWAY, let the call in flight finish, exit 0.
func TestDrainOnSIGTERM(t *testing.T) {
	be := fakemilvus.New(fakemilvus.Options{})
	if err := be.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Stop)
	port := testenv.FreePort(t)
	file := manifests(t, port, `    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20
    milvus-lb.io/healthcheck-type: none`, be.Addr())
	lb := testenv.StartLB(t, "-f", file, "--state-dir", t.TempDir())

	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("milvus-demo.milvus.io"))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := milvuspb.NewMilvusServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1,
			SearchParams: []*commonpb.KeyValuePair{{Key: fakemilvus.ParamSleep, Value: "2s"}}})
		done <- err
	}()
	for be.Inflight() == 0 {
		if ctx.Err() != nil {
			t.Fatal("call never reached the backend")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- lb.Stop(syscall.SIGTERM, 25*time.Second) }()

	// New connections are refused once the listener closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The readiness probe fails through the drain: nothing routing by it sends more.
	if resp, err := http.Get("http://" + lb.AdminAddr + "/readyz"); err != nil {
		t.Errorf("/readyz during the drain: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz during the drain: %d, want 503", resp.StatusCode)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("call in flight during drain failed: %v", err)
	}
	if err := <-exited; err != nil {
		t.Errorf("milvus-lb after SIGTERM: %v, want exit 0\n%s", err, lb.Logs())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("drain took %v; it should end when the last call does", d)
	}
}

func TestValidateReportsProblems(t *testing.T) {
	file := manifests(t, 8080, "", "127.0.0.1:19530")
	b, _ := os.ReadFile(file)
	bad := strings.Replace(string(b), "name: milvus-demo\n                port:", "name: milvus-demoo\n                port:", 1)
	bad = strings.Replace(bad, "    alb.ingress.kubernetes.io/target-type: ip", "    alb.ingress.kubernetes.io/target-type: ip\n    alb.ingress.kubernetes.io/waf-acl-id: abc", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := testenv.RunMilvusLB(t, "validate", "-f", file, "--state-dir", t.TempDir())
	if err == nil {
		t.Fatalf("validate exited 0 on a broken Ingress:\n%s", stdout)
	}
	for _, want := range []string{
		"error: " + file + ": Ingress milvus/milvus-demo: spec.rules[0].http.paths[0].backend.service.name: Service milvus/milvus-demoo not found",
		"alb.ingress.kubernetes.io/waf-acl-id",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, stdout)
		}
	}

	// serve refuses to start on the same files and prints the same report.
	_, stderr, err := testenv.RunMilvusLB(t, "serve", "-f", file, "--state-dir", t.TempDir(), "--admin-addr", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)), "--bind-address", "127.0.0.1")
	if err == nil {
		t.Fatal("serve started on a configuration with errors")
	}
	if !strings.Contains(stderr, "Service milvus/milvus-demoo not found") || !strings.Contains(stderr, "refusing to start") {
		t.Errorf("serve's report lacks the problem:\n%s", stderr)
	}
}

// get ingress prints kubectl's columns, and -w prints a row again when it changes (here: a
// file edit that adds a host, reloaded without a restart).
func TestGetIngressWatch(t *testing.T) {
	port := testenv.FreePort(t)
	file := manifests(t, port, "    milvus-lb.io/healthcheck-type: none", "127.0.0.1:1")
	lb := testenv.StartLB(t, "-f", file, "--state-dir", t.TempDir())

	out := testenv.MilvusLB(t, "get", "ingress", "--admin-addr", lb.AdminAddr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CLASS HOSTS ADDRESS PORTS AGE" {
		t.Fatalf("get ingress printed:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != "milvus-demo" || f[1] != "alb" || f[2] != "milvus-demo.milvus.io" || f[3] != "127.0.0.1" || f[4] != strconv.Itoa(port) || !strings.HasSuffix(f[5], "s") {
		t.Fatalf("get ingress row: %q", lines[1])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.BuildMilvusLB(t), "get", "ingress", "-w", "--admin-addr", lb.AdminAddr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	rows := bufio.NewScanner(stdout)
	for range 2 { // header and the current row
		if !rows.Scan() {
			t.Fatal("get ingress -w printed no table")
		}
	}
	b, _ := os.ReadFile(file)
	edited := strings.Replace(string(b), "    - host: milvus-demo.milvus.io\n", "    - host: milvus-demo.milvus.io\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: milvus-demo\n                port:\n                  number: 19530\n    - host: second.milvus.io\n", 1)
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if !rows.Scan() {
		t.Fatalf("get ingress -w printed nothing after the edit; serve log:\n%s", lb.Logs())
	}
	if got := rows.Text(); !strings.Contains(got, "milvus-demo.milvus.io,second.milvus.io") {
		t.Errorf("changed row %q, want both hosts", got)
	}
}

// status is the part of /api/v1/status this file's tests read, decoded as a user's script
// would.
type status struct {
	Generation uint64
	Rejected   *struct {
		At                time.Time
		Error             string
		ServingGeneration uint64
		Problems          []struct{ Severity, File, Object, Field, Message string }
	}
}

func getStatus(t *testing.T, adminAddr string) (status, string) {
	t.Helper()
	var st status
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+adminAddr+"/api/v1/status")), &st); err != nil {
		t.Fatalf("/api/v1/status: %v", err)
	}
	return st, httpGet(t, "http://"+adminAddr+"/status") // the page without JavaScript; the live page reads /api/v1/status too
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// An edit that serve refuses shows on the status page and in /api/v1/status (the problems,
// the generation still serving, when), not only in the log; the next applied edit clears it.
func TestRejectedReloadOnStatusPage(t *testing.T) {
	file := manifests(t, testenv.FreePort(t), "    milvus-lb.io/healthcheck-type: none", "127.0.0.1:1")
	lb := testenv.StartLB(t, "-f", file, "--state-dir", t.TempDir())
	good, _ := os.ReadFile(file)
	edited := time.Now()
	bad := strings.Replace(string(good), "name: milvus-demo\n                port:", "name: milvus-demoo\n                port:", 1)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	st, page := getStatus(t, lb.AdminAddr)
	for st.Rejected == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no rejection in /api/v1/status 15 s after a broken edit; log:\n%s", lb.Logs())
		}
		time.Sleep(100 * time.Millisecond)
		st, page = getStatus(t, lb.AdminAddr)
	}
	rej := st.Rejected
	if st.Generation != 1 || rej.ServingGeneration != 1 || rej.At.Before(edited.Add(-time.Second)) || rej.At.After(time.Now()) ||
		rej.Error != "configuration has 1 error(s)" {
		t.Errorf("status generation %d, rejected %+v; want generation 1 serving, rejected since the edit", st.Generation, rej)
	}
	const problem = "Service milvus/milvus-demoo not found"
	if len(rej.Problems) != 1 || rej.Problems[0].Severity != "error" || rej.Problems[0].File != file || !strings.Contains(rej.Problems[0].Message, problem) {
		t.Errorf("rejected problems %+v, want the missing Service in %s", rej.Problems, file)
	}
	for _, want := range []string{"Last reload rejected", "configuration has 1 error(s)", "Generation <b>1</b> keeps serving", problem} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q:\n%s", want, page)
		}
	}

	if err := os.WriteFile(file, good, 0o644); err != nil {
		t.Fatal(err)
	}
	for st.Generation != 2 {
		if time.Now().After(deadline.Add(15 * time.Second)) {
			t.Fatalf("the mended edit was not applied; log:\n%s", lb.Logs())
		}
		time.Sleep(100 * time.Millisecond)
		st, page = getStatus(t, lb.AdminAddr)
	}
	if st.Rejected != nil || strings.Contains(page, "Last reload rejected") {
		t.Errorf("after an applied edit the rejection is still shown: %+v", st.Rejected)
	}
}
