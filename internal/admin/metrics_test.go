package admin

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// scrape reads /metrics from the admin handler, as Prometheus does.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
	rec := httptest.NewRecorder()
	(&Server{Gateway: gw, Metrics: m}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, b)
	}
	return string(b)
}

func expectLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("/metrics lacks the line\n%s", l)
		}
	}
}

func newTestMetrics(opts ...MetricsOption) (*Metrics, *balancer.Registry) {
	reg := balancer.NewRegistry()
	return NewMetrics(gateway.New(reg, nil, nil, nil), reg, opts...), reg
}

const backend = "default/milvus-demo:19530"

func grpcCall(method, endpoint string, code codes.Code, milvusCode, errCode int32) *call.Record {
	return &call.Record{GRPC: true, Method: method, Backend: backend, Endpoint: endpoint, Attempts: 1,
		Code: code, MilvusCode: milvusCode, MilvusErrCode: errCode, Duration: 3 * time.Millisecond,
		DB: "default", Collection: "books"}
}

// TestMetricsMilvusStatus: a rate-limited Search is an OK reply for gRPC and counted as
// what Milvus said; per endpoint, calls are counted by result and timed.
func TestMetricsMilvusStatus(t *testing.T) {
	m, _ := newTestMetrics()
	m.Observe(grpcCall("Search", "10.0.0.1:19530", codes.OK, 8, 49))
	m.Observe(grpcCall("Search", "10.0.0.1:19530", codes.OK, 0, 0))
	m.Observe(grpcCall("Search", "10.0.0.2:19530", codes.Unavailable, 0, 0))
	m.Observe(&call.Record{Method: "/v2/vectordb/entities/search", Backend: backend, Endpoint: "10.0.0.2:19530", Status: 503, Attempts: 1})
	m.Observe(grpcCall("Query", "", codes.Unavailable, 0, 0)) // no endpoint picked
	body := scrape(t, m)
	expectLines(t, body,
		`milvus_lb_requests_total{backend="`+backend+`",code="OK",method="Search",milvus_code="ServiceRateLimit"} 1`,
		`milvus_lb_requests_total{backend="`+backend+`",code="OK",method="Search",milvus_code="Success"} 1`,
		`milvus_lb_requests_total{backend="`+backend+`",code="Unavailable",method="Search",milvus_code="Success"} 1`,
		`milvus_lb_requests_total{backend="`+backend+`",code="503",method="http",milvus_code="Success"} 1`,
		`milvus_lb_request_duration_seconds_count{backend="`+backend+`",method="Search",milvus_code="ServiceRateLimit"} 1`,
		`milvus_lb_endpoint_requests_total{backend="`+backend+`",endpoint="10.0.0.1:19530",result="milvus_error"} 1`,
		`milvus_lb_endpoint_requests_total{backend="`+backend+`",endpoint="10.0.0.1:19530",result="ok"} 1`,
		`milvus_lb_endpoint_requests_total{backend="`+backend+`",endpoint="10.0.0.2:19530",result="error"} 2`,
		`milvus_lb_endpoint_request_duration_seconds_count{backend="`+backend+`",endpoint="10.0.0.1:19530"} 2`,
		`milvus_lb_endpoint_request_duration_seconds_bucket{backend="`+backend+`",endpoint="10.0.0.1:19530",le="0.005"} 2`,
	)
	if strings.Contains(body, `collection="`) || strings.Contains(body, `endpoint=""`) {
		t.Error("collection labels without the option, or an endpoint series for a call that had none")
	}
}

// TestMetricsRateLimited: a call milvus-lb's own limit refused is counted by its limit; one
// Milvus rate-limited is not, though both are ServiceRateLimit in requests_total.
func TestMetricsRateLimited(t *testing.T) {
	m, _ := newTestMetrics()
	ours := grpcCall("Search", "", codes.OK, 8, 49)
	ours.Attempts, ours.Ingress, ours.RateLimit = 0, "milvus/milvus-demo", "reads-per-user"
	m.Observe(ours)
	m.Observe(ours)
	m.Observe(grpcCall("Search", "10.0.0.1:19530", codes.OK, 8, 49)) // Milvus's own
	body := scrape(t, m)
	expectLines(t, body,
		`milvus_lb_rate_limited_total{ingress="milvus/milvus-demo",limit="reads-per-user",method="Search"} 2`,
		`milvus_lb_requests_total{backend="`+backend+`",code="OK",method="Search",milvus_code="ServiceRateLimit"} 3`,
	)
	if n := strings.Count(body, "\nmilvus_lb_rate_limited_total{"); n != 1 {
		t.Errorf("%d rate_limited series; want the one of the limit", n)
	}
}

func TestMetricsCollectionLabelsCapped(t *testing.T) {
	m, _ := newTestMetrics(WithCollectionLabels(2))
	for _, c := range []string{"books", "films", "songs", "games", "books"} {
		r := grpcCall("Search", "10.0.0.1:19530", codes.OK, 0, 0)
		r.Collection = c
		m.Observe(r)
	}
	body := scrape(t, m)
	series := func(coll string, n string) string {
		return `milvus_lb_requests_total{backend="` + backend + `",code="OK",collection="` + coll + `",db="default",method="Search",milvus_code="Success"} ` + n
	}
	expectLines(t, body, series("books", "2"), series("films", "1"), series("_other", "2"),
		`milvus_lb_request_duration_seconds_count{backend="`+backend+`",collection="_other",db="default",method="Search",milvus_code="Success"} 2`)
	if strings.Contains(body, `collection="songs"`) {
		t.Error("a third collection got its own series with a limit of 2")
	}
}

// TestEndpointSeriesDropped: after a configuration change, an endpoint that left (with no
// call in flight) has no series; the others keep theirs.
func TestEndpointSeriesDropped(t *testing.T) {
	m, reg := newTestMetrics()
	for _, ep := range []string{"10.0.0.1:19530", "10.0.0.2:19530", "10.0.0.3:19530"} {
		reg.Get(ep)
		m.Observe(grpcCall("Search", ep, codes.OK, 0, 0))
	}
	busy, _ := reg.Get("10.0.0.3:19530")
	busy.Start() // a call still in flight: kept, draining
	reg.Retain(map[string]bool{"10.0.0.1:19530": true})
	m.Reloaded(true)
	body := scrape(t, m)
	for ep, want := range map[string]bool{"10.0.0.1:19530": true, "10.0.0.2:19530": false, "10.0.0.3:19530": true} {
		for _, name := range []string{"milvus_lb_endpoint_requests_total", "milvus_lb_endpoint_request_duration_seconds_count"} {
			if got := strings.Contains(body, name+`{backend="`+backend+`",endpoint="`+ep+`"`); got != want {
				t.Errorf("%s for %s present = %v, want %v", name, ep, got, want)
			}
		}
	}
	expectLines(t, body, `milvus_lb_config_reloads_total{result="success"} 1`)

	// An endpoint that comes back counts again, from zero (Observe looks its series up
	// once and keeps them: not the deleted ones).
	m.Observe(grpcCall("Search", "10.0.0.2:19530", codes.OK, 0, 0))
	expectLines(t, scrape(t, m),
		`milvus_lb_endpoint_requests_total{backend="`+backend+`",endpoint="10.0.0.2:19530",result="ok"} 1`,
		`milvus_lb_requests_total{backend="`+backend+`",code="OK",method="Search",milvus_code="Success"} 4`)
}

func TestAccessLogCollector(t *testing.T) {
	m, _ := newTestMetrics()
	m.Registry.MustRegister(AccessLogCollector(func() accesslog.Stats { return accesslog.Stats{Written: 9, Dropped: 3, WriteFailed: 1} }))
	expectLines(t, scrape(t, m),
		`milvus_lb_access_log_dropped_total{reason="queue_full"} 3`,
		`milvus_lb_access_log_dropped_total{reason="write_error"} 1`)
}
