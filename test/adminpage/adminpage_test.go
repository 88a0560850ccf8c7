// Package adminpage tests the admin page as an operator sees it: in a real headless
// Chromium, after known traffic through an in-process balancer (the guide's objects through
// the reload pipeline, internal/testkit/lbtest) with fake Milvus backends, one of them
// failing its health check.
//
// MILVUS_LB_SCREENSHOT=docs/admin.png go test -run TestAdminPage ./test/adminpage
// also drives a minute of mixed traffic and writes a screenshot of the page there.
package adminpage

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const host = lbtest.Host

// rig is the guide's balancer in front of three fake Milvus proxies, configured through
// the reload pipeline serve runs (internal/testkit/lbtest), with its admin server.
type rig struct {
	backends []*fakemilvus.Server
	lb       *lbtest.LB
	admin    string // the admin server's URL
	client   milvuspb.MilvusServiceClient
	live     *admin.Live
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{live: admin.NewLive(), backends: lbtest.Backends(t, 3, fakemilvus.Options{NoRecord: true})}
	// b2 fails its health check from the start: it is never picked.
	r.backends[2].SetServing(healthpb.HealthCheckResponse_NOT_SERVING)
	// grpc.health.v1, not CheckHealth: SetFailure fails every MilvusService call, and the
	// endpoint whose calls fail must stay healthy.
	r.lb = lbtest.Start(t, lbtest.Options{Observer: r.live, CertValidity: 90 * 24 * time.Hour,
		Annotations: map[string]string{ingress.AnnotationHealthCheckType: "grpc-health"}}, lbtest.Addrs(r.backends)...)
	dp := r.lb.Plane
	srv := httptest.NewServer((&admin.Server{Gateway: dp.Gateway, Metrics: admin.NewMetrics(dp.Gateway, dp.Registry),
		Address: "127.0.0.1", Ports: dp.Listeners.Ports, Live: r.live, Registry: dp.Registry,
		Rejected: r.lb.Pipeline.Rejected}).Handler())
	t.Cleanup(srv.Close)
	r.admin = srv.URL
	r.client, _ = r.lb.Dial(t, true)
	r.waitChecked(t)
	return r
}

// waitChecked waits for the first health check of every endpoint (done at once), so that
// no call goes to b2 before its check fails.
func (r *rig) waitChecked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		for _, ep := range r.lb.Plane.Registry.All() {
			if ep.Checked() {
				n++
			}
		}
		if n == len(r.backends) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d endpoints checked after 10 s", n, len(r.backends))
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	if c := page.find(attr("data-cert", "")); c == nil || !strings.Contains(c.text(), host) || !strings.Contains(c.text(), "expires in 89 d") {
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
			// RESOURCE_EXHAUSTED, not UNAVAILABLE: a read-only call that fails UNAVAILABLE
			// is retried on another endpoint, and the page would show no failure.
			r.backends[0].SetFailure(codes.ResourceExhausted, "rate limit exceeded")
			r.calls(t, "Search", 2, codes.ResourceExhausted)
			r.backends[0].SetFailure(codes.OK, "")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAdminPageRejectedReload: an edit with an error is refused, the previous configuration
// keeps serving, and the live page says so, with the problem, until an edit is applied.
func TestAdminPageRejectedReload(t *testing.T) {
	r := newRig(t)
	objs := r.lb.Objects(lbtest.Addrs(r.backends)...)
	objs.Ingresses[0].Annotations[ingress.AnnotationListenPorts] = `[{"HTTPS":"four-four-three"}]`
	res := r.lb.Pipeline.Reload(context.Background(), objs, nil)
	if res.Err == nil {
		t.Fatal("a configuration with a bad listen-ports was applied")
	}
	r.calls(t, "GetVersion", 3, codes.OK) // the previous configuration serves

	page := loadPage(t, r.admin+"/")
	box := page.find(attr("id", "rejected"))
	switch {
	case box == nil:
		t.Fatalf("the page has no rejected-reload box:\n%s", page.text())
	case box.attr("data-rejected") == "" || hasAttr(box, "hidden"):
		t.Fatalf("the rejected reload is not shown: %q", box.text())
	}
	text := box.text()
	for _, want := range []string{"Last reload rejected", res.Err.Error(), "Generation 1 keeps serving", "listen-ports"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rejected-reload box says %q; want it to say %q", text, want)
		}
	}
	if p := box.find(attr("data-problem", "error")); p == nil {
		t.Errorf("the rejected-reload box lists no error: %q", text)
	}
	if g := page.find(attr("id", "generation")).text(); g != "1" {
		t.Errorf("the page shows generation %q, want 1 (the one still serving)", g)
	}

	r.lb.SetEndpoints(lbtest.Addrs(r.backends)...) // a good edit
	page = loadPage(t, r.admin+"/")
	if box := page.find(attr("id", "rejected")); box == nil || !hasAttr(box, "hidden") {
		t.Errorf("after an applied edit the page still shows the rejection: %q", box.text())
	}
	if g := page.find(attr("id", "generation")).text(); g != "2" {
		t.Errorf("after an applied edit the page shows generation %q, want 2", g)
	}
}

// TestAdminPageCacheHitRatio: with the reply cache on, each backend's card shows the
// share of the calls a cache could answer that it answered (issue 15's Metrics line).
func TestAdminPageCacheHitRatio(t *testing.T) {
	r := newRig(t)
	objs := r.lb.Objects(lbtest.Addrs(r.backends)...)
	objs.Ingresses[0].Annotations[ingress.AnnotationCache] = `{"methods":["Search"]}`
	if res := r.lb.Pipeline.Reload(context.Background(), objs, nil); res.Err != nil {
		t.Fatalf("the cache annotation was refused: %v", res.Err)
	}
	// 1 miss then 9 hits (Eventually), 5 bypassed (Strong): 9 hits of 15.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 15 {
		level := commonpb.ConsistencyLevel_Eventually
		if i >= 10 {
			level = commonpb.ConsistencyLevel_Strong
		}
		req := &milvuspb.SearchRequest{DbName: "default", CollectionName: "books", ConsistencyLevel: level}
		if _, err := r.client.Search(ctx, req); err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
	}
	r.waitObserved(t, 15)

	page := loadPage(t, r.admin+"/")
	cells := page.findAll(attr("data-field", "cache"))
	if len(cells) != 1 {
		t.Fatalf("%d backends show a cache hit ratio, want 1 (the guide's one backend):\n%s", len(cells), page.text())
	}
	if got, want := strings.Join(strings.Fields(cells[0].text()), " "), "cache hits 60% of 15"; got != want {
		t.Errorf("the backend shows %q, want %q", got, want)
	}
}
