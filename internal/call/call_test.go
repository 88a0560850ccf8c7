package call

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

type records []Record

func (r *records) Observe(rec *Record) { *r = append(*r, *rec) }

// testPort serves host "milvus-demo.milvus.io" on port 443 with a backend of n healthy
// endpoints, picked round robin.
func testPort(n int, obs Observer) (*Port, []*balancer.Endpoint) {
	eps := make([]*balancer.Endpoint, n)
	for i := range eps {
		eps[i] = &balancer.Endpoint{Addr: "10.0.0." + string(rune('1'+i)) + ":19530"}
		eps[i].SetHealthy(true)
	}
	be := &gateway.Backend{
		Backend:   &config.Backend{Key: "milvus/milvus-demo:19530", Service: "milvus/milvus-demo", Port: "19530"},
		Policy:    config.Resilience{}.Resolved(),
		Picker:    balancer.NewPicker(config.RoundRobin, eps, 0),
		Endpoints: eps,
	}
	l := &gateway.Listener{Routes: router.New([]*router.Entry[*gateway.Backend]{
		{Route: config.Route{Host: "milvus-demo.milvus.io", Path: "/", PathType: "Prefix"}, Target: be},
	})}
	snap := &gateway.Snapshot{Listeners: map[int]*gateway.Listener{443: l}}
	return &Port{Number: 443, TLS: true, Snapshot: func() *gateway.Snapshot { return snap },
		Observer: obs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, eps
}

func inflight(eps []*balancer.Endpoint) (n int64) {
	for _, ep := range eps {
		n += ep.Inflight()
	}
	return n
}

const search = "/milvus.proto.milvus.MilvusService/Search"

// A call is counted on exactly one endpoint from Pick to Finish, whatever happens between.
func TestPickCountsTheCallUntilFinish(t *testing.T) {
	var recs records
	p, eps := testPort(2, &recs)
	var c Call
	c.Begin(p, search, true, time.Now())
	if f := routeHeaders(&c, "milvus-demo.milvus.io", "", search); f != nil {
		t.Fatal(f)
	}
	ep, f := c.Pick()
	if f != nil || ep.Inflight() != 1 || inflight(eps) != 1 {
		t.Fatalf("after Pick: %v, %d calls in flight", f, inflight(eps))
	}
	if _, f := c.Pick(); f != nil || inflight(eps) != 1 {
		t.Fatalf("a second Pick must move the count, not add one: %d in flight", inflight(eps))
	}
	c.Finish(time.Now(), "5")
	c.Finish(time.Now(), "")
	if inflight(eps) != 0 {
		t.Fatalf("after Finish: %d calls in flight", inflight(eps))
	}
	if len(recs) != 2 || recs[0].Method != "Search" || recs[0].Attempts != 2 || recs[0].Code != codes.NotFound ||
		recs[0].Backend != "milvus/milvus-demo:19530" || recs[0].Authority != "milvus-demo.milvus.io" {
		t.Fatalf("record %+v", recs)
	}
}

func TestRouteFailures(t *testing.T) {
	p, _ := testPort(1, nil)
	var c Call
	c.Begin(p, search, true, time.Now())
	if f := routeHeaders(&c, "other.example", "", search); f == nil || f.Code != codes.Unimplemented || f.HTTPStatus() != 404 {
		t.Errorf("unknown host: %v, want UNIMPLEMENTED/404", f)
	}
	gone := &Port{Number: 8443, TLS: p.TLS, Snapshot: p.Snapshot, Observer: p.Observer, Log: p.Log, Limits: p.Limits}
	c.Begin(gone, search, true, time.Now())
	if f := routeHeaders(&c, "milvus-demo.milvus.io", "", search); f == nil || f.Code != codes.Unavailable || f.Msg != "listener is shutting down" {
		t.Errorf("port gone from the configuration: %v, want UNAVAILABLE shutting down", f)
	}
	// An address for :authority, the site's name in SNI (grpc-js's serverName option).
	c.Begin(p, search, true, time.Now())
	if f := routeHeaders(&c, "127.0.0.1:443", "milvus-demo.milvus.io", search); f != nil {
		t.Errorf("route by SNI: %v", f)
	}
}

func TestNoEndpoint(t *testing.T) {
	p, eps := testPort(1, nil)
	eps[0].SetHealthy(false)
	var c Call
	c.Begin(p, search, true, time.Now())
	if f := routeHeaders(&c, "milvus-demo.milvus.io", "", search); f != nil {
		t.Fatal(f)
	}
	if _, f := c.Pick(); f == nil || f.Code != codes.Unavailable || f.HTTPStatus() != 503 {
		t.Fatalf("no healthy endpoint: %v, want UNAVAILABLE/503", f)
	}
}

// A refused connection ejects the endpoint. A call goes to another endpoint when the
// backend provably did not receive it, or when it changes nothing (a read) and failed
// before a reply, and only while the data path holds it whole and attempts are left.
func TestFailedRetriesOnlyWhatIsSafe(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	reset := errors.New("connection reset by peer")
	const insert = "/milvus.proto.milvus.MilvusService/Insert"
	for _, tc := range []struct {
		name       string
		method     string
		err        error
		stage      Stage
		replayable bool
		endpoints  int
		retry      bool
		code       codes.Code
	}{
		{"refused search", search, refused, NotSent, true, 3, true, 0},
		{"refused insert", insert, refused, NotSent, true, 3, true, 0},
		{"refused, request not held", search, refused, NotSent, false, 3, false, codes.Unavailable},
		{"refused, only endpoint", search, refused, NotSent, true, 1, false, codes.Unavailable},
		{"search reset before reply", search, reset, BeforeReply, true, 3, true, 0},
		{"insert reset before reply", insert, reset, BeforeReply, true, 3, false, codes.Unavailable},
		{"search reset after reply", search, reset, AfterReply, true, 3, false, codes.Unavailable},
		{"deadline", search, context.DeadlineExceeded, BeforeReply, true, 3, false, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, eps := testPort(tc.endpoints, nil)
			var c Call
			c.Begin(p, tc.method, true, time.Now())
			routeHeaders(&c, "milvus-demo.milvus.io", "", tc.method)
			ep, _ := c.Pick()
			retry, f := c.Failed(context.Background(), tc.err, tc.stage, tc.replayable)
			if retry != tc.retry || (!retry && f.Code != tc.code) {
				t.Fatalf("Failed = %v, %v; want retry %v, code %v", retry, f, tc.retry, tc.code)
			}
			_ = ep // one refusal ejects nothing: outlier detection wants several in a row (resilience_test.go)
			c.Finish(time.Now(), "")
			if inflight(eps) != 0 {
				t.Errorf("%d calls left in flight", inflight(eps))
			}
		})
	}
	// At most 3 endpoints are tried (milvus-lb.io/max-attempts' default).
	p, _ := testPort(5, nil)
	var c Call
	c.Begin(p, search, true, time.Now())
	routeHeaders(&c, "milvus-demo.milvus.io", "", search)
	tries := 0
	for {
		if _, f := c.Pick(); f != nil {
			t.Fatal(f)
		}
		tries++
		if retry, _ := c.Failed(context.Background(), refused, NotSent, true); !retry {
			break
		}
	}
	if tries != 3 {
		t.Fatalf("tried %d endpoints, want 3", tries)
	}
}

func TestFailureMessages(t *testing.T) {
	f := &Failure{Code: codes.Unavailable, Msg: "backend 100% gone"}
	if got := f.GRPCMessage(); got != "milvus-lb:%20backend%20100%25%20gone" {
		t.Errorf("grpc-message %q must be percent-encoded", got)
	}
	if got := NoRule("a", "/b").GRPCMessage(); got != `milvus-lb: no rule matches host "a" path "/b"` {
		t.Errorf("grpc-message %q", got)
	}
}

// A failure that means a misconfiguration reaches the log as a warning, naming the
// backend; passing faults stay at debug level.
func TestAnswerLogsMisconfigurationAsWarning(t *testing.T) {
	var buf strings.Builder
	p, _ := testPort(1, nil)
	p.Log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var c Call
	c.Begin(p, "/v2/vectordb/collections/list", false, time.Now())
	routeHeaders(&c, "milvus-demo.milvus.io", "", "/v2/vectordb/collections/list")
	f := Classify(context.Background(), errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x00\x00\x06\x04"`), c.Service())
	c.Answer(f)
	if f.HTTPStatus() != 502 || !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "not HTTP/1.1") {
		t.Fatalf("status %d, log %q; want 502 and a warning saying the backend is not HTTP/1.1", f.HTTPStatus(), buf.String())
	}
	buf.Reset()
	c.Answer(Classify(context.Background(), errors.New("connection reset by peer"), c.Service()))
	if buf.Len() != 0 {
		t.Fatalf("a passing fault was logged above debug: %q", buf.String())
	}
}

// routeHeaders routes c by authority, TLS server name and path only.
func routeHeaders(c *Call, authority, sni, path string) *Failure {
	return c.Route(&Request{Authority: authority, SNI: sni, Request: router.Request{Path: path}}).Fail
}
