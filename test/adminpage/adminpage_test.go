// Package adminpage tests the admin page as an operator sees it: in a real headless
// Chromium, after known traffic through an in-process data plane with fake Milvus
// backends, one of them failing its health check.
//
// MILVUS_LB_SCREENSHOT=docs/admin.png go test -run TestAdminPage ./test/adminpage
// also drives a minute of mixed traffic and writes a screenshot of the page there.
package adminpage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const host = "milvus-demo.milvus.io"

// rig is a data plane in front of three fake Milvus proxies, with its admin server.
type rig struct {
	backends [3]*fakemilvus.Server
	admin    string // the admin server's URL
	client   milvuspb.MilvusServiceClient
	live     *admin.Live
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{live: admin.NewLive()}
	var addrs []string
	for i := range r.backends {
		be := fakemilvus.New(fakemilvus.Options{Name: "b" + strconv.Itoa(i), NoRecord: true})
		if err := be.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(be.Stop)
		r.backends[i] = be
		addrs = append(addrs, be.Addr())
	}
	// b2 fails its health check from the start: it is never picked.
	r.backends[2].SetServing(healthpb.HealthCheckResponse_NOT_SERVING)

	opts := listener.DefaultOptions()
	opts.BindAddress = "127.0.0.1"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dp := dataplane.New(dataplane.Options{Listener: opts, Limits: call.DefaultLimits(), Log: log})
	t.Cleanup(func() { dp.Close(time.Second) })
	dp.SetObserver(r.live)
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.IssueTemplate(t, &x509.Certificate{Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	plainPort, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	model := demoModel(host, plainPort, tlsPort, certPEM, keyPEM, addrs...)
	model.Ingresses = []config.IngressStatus{{Namespace: "milvus", Name: "milvus-demo", Class: "alb", Hosts: []string{host},
		Ports: []int{plainPort, tlsPort}, Served: true, Created: time.Now()}}
	// grpc.health.v1, not CheckHealth: SetFailure fails every MilvusService call, and the
	// endpoint whose calls fail must stay healthy.
	model.Backends[demoBackendKey].HealthCheck = config.HealthCheck{Kind: config.CheckGRPCHealth,
		Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second), HealthyThreshold: 1, UnhealthyThreshold: 1}
	if _, err := dp.Gateway.Apply(context.Background(), model, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&admin.Server{Gateway: dp.Gateway, Metrics: admin.NewMetrics(dp.Gateway, dp.Registry),
		Address: "127.0.0.1", Ports: dp.Listeners.Ports, Live: r.live, Registry: dp.Registry}).Handler())
	t.Cleanup(srv.Close)
	r.admin = srv.URL

	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(tlsPort),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: host})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	r.client = milvuspb.NewMilvusServiceClient(cc)
	return r
}

// calls makes n calls of method and returns how many failed with code.
func (r *rig) calls(t *testing.T, method string, n int, code codes.Code) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := 0
	for range n {
		var err error
		switch method {
		case "GetVersion":
			_, err = r.client.GetVersion(ctx, &milvuspb.GetVersionRequest{})
		case "ShowCollections":
			_, err = r.client.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{DbName: "default"})
		case "Search":
			_, err = r.client.Search(ctx, &milvuspb.SearchRequest{DbName: "default", CollectionName: "books"})
		case "Query":
			_, err = r.client.Query(ctx, &milvuspb.QueryRequest{DbName: "default", CollectionName: "books"})
		case "Insert":
			_, err = r.client.Insert(ctx, &milvuspb.InsertRequest{DbName: "default", CollectionName: "books"})
		default:
			t.Fatalf("no call for %s", method)
		}
		switch {
		case err == nil:
		case status.Code(err) == code:
			failed++
		default:
			t.Fatalf("%s: %v", method, err)
		}
	}
	return failed
}

// waitObserved waits until the page's source has seen n calls: a call's record is made
// when the call ends, which its client may see first.
func (r *rig) waitObserved(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.live.Calls(time.Now()).Total.Calls < n {
		if time.Now().After(deadline) {
			t.Fatalf("the live view saw %d calls, want %d", r.live.Calls(time.Now()).Total.Calls, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAdminPage(t *testing.T) {
	r := newRig(t)
	r.calls(t, "GetVersion", 20, codes.OK)
	r.backends[1].SetFailure(codes.ResourceExhausted, "rate limit exceeded")
	failed := r.calls(t, "ShowCollections", 10, codes.ResourceExhausted)
	r.backends[1].SetFailure(codes.OK, "")
	if failed == 0 || failed == 10 {
		t.Fatalf("%d of 10 ShowCollections failed; want some (those sent to b1)", failed)
	}
	r.waitObserved(t, 30)
	if path := os.Getenv("MILVUS_LB_SCREENSHOT"); path != "" {
		r.mixedTraffic(t, time.Minute)
		screenshot(t, r.admin+"/", filepath.Join(testenv.Root(t), path))
		return
	}

	page := loadPage(t, r.admin+"/")
	if page.find(attr("data-updated", "")) == nil {
		t.Fatalf("the page never rendered data from /api/v1/live:\n%s", page.text())
	}
	for i, want := range []string{admin.StateHealthy, admin.StateHealthy, admin.StateUnhealthy} {
		row := page.find(attr("data-endpoint", r.backends[i].Addr()))
		if row == nil {
			t.Errorf("endpoint %s (b%d) is not on the page", r.backends[i].Addr(), i)
		} else if got := row.attr("data-state"); got != want || !strings.Contains(row.text(), want) {
			t.Errorf("endpoint b%d shows %q (%q), want %q", i, got, row.text(), want)
		}
	}
	for method, want := range map[string][2]int{"GetVersion": {20, 0}, "ShowCollections": {10, failed}} {
		row := page.find(attr("data-method", method))
		if row == nil {
			t.Errorf("no row for %s among the methods", method)
			continue
		}
		calls, fails := row.find(attr("data-field", "calls")).text(), row.find(attr("data-field", "failed")).text()
		if calls != strconv.Itoa(want[0]) || fails != strconv.Itoa(want[1]) {
			t.Errorf("%s shows %s calls, %s failed; want %d, %d", method, calls, fails, want[0], want[1])
		}
	}
	if got := page.find(attr("id", "t-calls")).text(); !strings.HasPrefix(got, "30 calls") {
		t.Errorf("the total shows %q, want 30 calls", got)
	}
	rows := page.findAll(attr("data-failure", "ShowCollections"))
	if len(rows) != failed {
		t.Errorf("%d failed ShowCollections listed, want %d", len(rows), failed)
	} else if st := rows[0].find(attr("data-field", "status")).text(); st != "ResourceExhausted" || !strings.Contains(rows[0].text(), r.backends[1].Addr()) {
		t.Errorf("failed call shows status %q, endpoint in %q; want ResourceExhausted from b1", st, rows[0].text())
	}
	if c := page.find(attr("data-cert", "test")); c == nil || !strings.Contains(c.text(), host) || !strings.Contains(c.text(), "expires in 89 d") {
		t.Errorf("the listener's certificate shows %q, want its name and 89 days left", c.text())
	}
	if in := page.find(attr("data-ingress", "milvus/milvus-demo")); !strings.Contains(in.text(), "served") {
		t.Errorf("the Ingress shows %q, want it served", in.text())
	}
}

// mixedTraffic makes the page worth a screenshot: calls of several methods at changing
// rates for d, a few of them failing.
func (r *rig) mixedTraffic(t *testing.T, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		burst := 4 + (i*7)%9
		r.calls(t, "Search", burst, codes.OK)
		r.calls(t, "Query", burst/2, codes.OK)
		if i%3 == 0 {
			r.calls(t, "Insert", 2, codes.OK)
		}
		if i%17 == 5 {
			r.backends[0].SetFailure(codes.Unavailable, "proxy not ready")
			r.calls(t, "Search", 2, codes.Unavailable)
			r.backends[0].SetFailure(codes.OK, "")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
