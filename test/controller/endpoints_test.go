package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/kubetest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestControllerEndpointStates follows EndpointSlice conditions with backends that say
// who answered (fakemilvus): calls spread over the ready endpoints of one client
// connection; a terminating endpoint gets no new call but finishes the one in flight; a
// not-ready one gets nothing; each change is in force within a second.
func TestControllerEndpointStates(t *testing.T) {
	cluster := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := repoRoot(t)
	for _, f := range []string{"00-namespace.yaml", "10-rbac.yaml", "20-ingressclass.yaml"} {
		if out, err := cluster.Kubectl(ctx, "apply", "-f", filepath.Join(root, "deploy", f)); err != nil {
			t.Fatal(err, out)
		}
	}
	apply := func(manifest string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := cluster.Kubectl(ctx, "apply", "-f", path); err != nil {
			t.Fatal(err, out)
		}
	}

	for n := 1; n <= 3; n++ {
		s := fakemilvus.New(fakemilvus.Options{Name: "b" + strconv.Itoa(n)})
		if err := s.Start(net.JoinHostPort(fmt.Sprintf(liteIP, n), "19530")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}

	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, host)
	crt, err := certs.Import(certPEM, ca.CertPEM, keyPEM, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Secrets(kubetest.ControllerNamespace).Create(ctx, certs.ToSecret(crt, kubetest.ControllerNamespace), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apply(milvusService + "---\n" + slice("1", "2"))
	apply(testenv.GuideIngress(t, crt.ARN, listenPort))
	startController(t, cluster.ControllerKubeconfig(t), "milvus-lb-a", lbA)
	waitEndpoints(t, time.Now().Add(30*time.Second), "1", "2")

	conn, err := grpc.NewClient(net.JoinHostPort(lbA, strconv.Itoa(listenPort)),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: host})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := milvuspb.NewMilvusServiceClient(conn)
	search := func(ctx context.Context, sleep string) (string, error) {
		var md metadata.MD
		req := &milvuspb.SearchRequest{CollectionName: "c", Nq: 1}
		if sleep != "" {
			req.SearchParams = []*commonpb.KeyValuePair{{Key: fakemilvus.ParamSleep, Value: sleep}}
		}
		_, err := client.Search(ctx, req, grpc.Header(&md))
		if v := md.Get(fakemilvus.BackendHeader); len(v) == 1 {
			return v[0], err
		}
		return "", err
	}
	answered := func(n int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range n {
			b, err := search(ctx, "")
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			got[b]++
		}
		return got
	}

	// One client connection, calls balanced per request over both ready endpoints.
	if got := answered(40); got["b1"] == 0 || got["b2"] == 0 || len(got) != 2 {
		t.Fatalf("40 calls answered by %v, want both b1 and b2", got)
	}

	// A call in flight to b1 when b1 starts terminating finishes there; new calls go
	// to b2 only.
	apply(slice("1"))
	waitEndpoints(t, time.Now().Add(time.Second), "1")
	slow := make(chan error, 1)
	slowBy := make(chan string, 1)
	go func() {
		b, err := search(ctx, "2s")
		slowBy <- b
		slow <- err
	}()
	time.Sleep(200 * time.Millisecond) // let it reach b1
	changed := time.Now()
	apply(slice("1:terminating", "2"))
	waitEndpoints(t, changed.Add(time.Second), "1-", "2")
	if got := answered(30); got["b2"] != 30 {
		t.Errorf("with b1 terminating, 30 calls answered by %v, want b2 only", got)
	}
	if err, b := <-slow, <-slowBy; err != nil || b != "b1" {
		t.Errorf("the call in flight on b1 when it started terminating: answered by %q, err %v; want b1, no error", b, err)
	}

	// Not ready, plus a new endpoint: only the new one is called.
	changed = time.Now()
	apply(slice("2:notready", "3"))
	waitEndpoints(t, changed.Add(time.Second), "2-", "3")
	if got := answered(30); got["b3"] != 30 {
		t.Errorf("with b2 not ready and b3 added, 30 calls answered by %v, want b3 only", got)
	}
}

// waitEndpoints waits until the balancer at lbA has exactly the endpoints want ("N"
// taking new calls, "N-" not), failing at deadline.
func waitEndpoints(t *testing.T, deadline time.Time, want ...string) {
	t.Helper()
	var exp []string
	for _, e := range want {
		n, off := strings.CutSuffix(e, "-")
		exp = append(exp, fmt.Sprintf("%s ready=%t", net.JoinHostPort(fmt.Sprintf(liteIP, mustAtoi(n)), "19530"), !off))
	}
	for {
		got, err := endpoints(lbA)
		if err == nil && fmt.Sprint(got) == fmt.Sprint(exp) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balancer endpoints %v (%v), want %v", got, err, exp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
