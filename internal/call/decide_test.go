package call

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

const host = "milvus-demo.milvus.io"

// routedPort compiles routes on port 80 over backends a, b and c (one endpoint each,
// without health checks) as the gateway does, with the rate limits of Ingress ns/ing.
func routedPort(t testing.TB, limits []config.RateLimit, routes ...config.Route) *Port {
	t.Helper()
	return compiledPort(t, routedModel(limits, routes...))
}

// routedModel is the model routedPort compiles.
func routedModel(limits []config.RateLimit, routes ...config.Route) *config.Model {
	m := &config.Model{Backends: map[string]*config.Backend{}, Listeners: []config.Listener{{Port: 80, Protocol: config.HTTP}}}
	for i, k := range []string{"a", "b", "c"} {
		m.Backends[k] = &config.Backend{Key: k, Service: "ns/" + k, Port: "19530", Algorithm: config.RoundRobin,
			HealthCheck: config.HealthCheck{Kind: config.CheckNone},
			Endpoints:   []config.Endpoint{{Address: "10.0.0." + string(rune('1'+i)) + ":19530", Ready: true}}}
	}
	for i := range routes {
		if routes[i].Host == "" {
			routes[i].Host = host
		}
		if routes[i].Path == "" {
			routes[i].Path, routes[i].PathType = "/", config.PathPrefix
		}
		routes[i].Ingress = "ns/ing"
	}
	m.Listeners[0].Routes = routes
	if limits != nil {
		m.RateLimits = map[string][]config.RateLimit{"ns/ing": limits}
	}
	return m
}

// compiledPort is port 80 of model m, compiled as the gateway does.
func compiledPort(t testing.TB, m *config.Model) *Port {
	t.Helper()
	snap, err := gateway.Compile(m, balancer.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	snap.RateLimits = ratelimit.CompileAll(m.RateLimits, nil, 0)
	return &Port{Number: 80, Snapshot: func() *gateway.Snapshot { return snap }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func grpcRequest(method string, headers ...hpack.HeaderField) *Request {
	path := milvus.ServicePrefix + method
	return &Request{Authority: host, Request: router.Request{Path: path, Method: "POST", Headers: headers,
		Source: netip.MustParseAddr("10.1.2.3"), Milvus: milvus.Lookup(path)}}
}

func decide(p *Port, req *Request, names *router.Names) (string, router.NameSet, *Failure) {
	var c Call
	c.Begin(p, req.Path, true, time.Now())
	_, need, f := c.decide(req, names)
	if c.Backend() == nil {
		return "", need, f
	}
	return c.Backend().Key, need, f
}

func cond(f config.ConditionField, values ...string) config.Condition {
	return config.Condition{Field: f, Values: values}
}

// Tenants go to their cluster by the dbname metadata (the ALB's http-header condition), at
// the headers: the first message is not waited for.
func TestDecideByHeader(t *testing.T) {
	p := routedPort(t, nil,
		config.Route{Backend: "a"},
		config.Route{Backend: "b", Conditions: []config.Condition{{Field: config.FieldHTTPHeader, Name: "dbname", Values: []string{"tenant_b"}}}})
	for _, tc := range []struct {
		db, want string
	}{{"tenant_b", "b"}, {"TENANT_B", "b"}, {"tenant_c", "a"}, {"", "a"}} {
		var hs []hpack.HeaderField
		if tc.db != "" {
			hs = append(hs, hpack.HeaderField{Name: "dbname", Value: tc.db})
		}
		got, need, f := decide(p, grpcRequest("Search", hs...), nil)
		if got != tc.want || need != 0 || f != nil {
			t.Errorf("dbname %q: backend %q need %b failure %v; want %s at the headers", tc.db, got, need, f, tc.want)
		}
	}
}

// The database condition waits for the first message, then resolves the database as
// Milvus does: the db_name field, else the dbname metadata, else "default".
func TestDecideByDatabase(t *testing.T) {
	p := routedPort(t, nil,
		config.Route{Backend: "a"},
		config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldDatabase, "tenant_b")}},
		config.Route{Backend: "c", Conditions: []config.Condition{cond(config.FieldDatabase, "default"), cond(config.FieldCollection, "logs_*")}})
	meta := hpack.HeaderField{Name: "dbname", Value: "tenant_b"}
	all := router.NameDB | router.NameCollection | router.NameSize
	cases := []struct {
		name  string
		req   *Request
		names router.Names
		want  string
	}{
		{"db_name field", grpcRequest("Search"), router.Names{DB: "tenant_b", Known: all}, "b"},
		{"dbname metadata", grpcRequest("Insert", meta), router.Names{Collection: "x", Known: all}, "b"},
		{"field beats metadata", grpcRequest("Query", meta), router.Names{DB: "other", Known: all}, "a"},
		{"default and a log collection", grpcRequest("Search"), router.Names{Collection: "logs_7", Known: all}, "c"},
		{"default, other collection", grpcRequest("Search"), router.Names{Collection: "users", Known: all}, "a"},
		{"names not read", grpcRequest("Search", meta), router.Names{}, "a"},
	}
	for _, tc := range cases {
		_, need, f := decide(p, tc.req, nil)
		if need&(router.NameDB|router.NameCollection) != router.NameDB|router.NameCollection || f != nil {
			t.Errorf("%s: at the headers need %b failure %v; want db and collection asked for", tc.name, need, f)
		}
		got, need, f := decide(p, tc.req, &tc.names)
		if got != tc.want || need != 0 || f != nil {
			t.Errorf("%s: backend %q need %b failure %v, want %s", tc.name, got, need, f, tc.want)
		}
	}
	// REST, other gRPC services and streams are not read: Milvus conditions do not hold.
	rest := &Request{Authority: host, Request: router.Request{Path: "/v2/vectordb/entities/search", Method: "POST"}}
	for _, req := range []*Request{rest, grpcRequest("DumpMessages")} {
		if got, need, _ := decide(p, req, nil); got != "a" || need != 0 {
			t.Errorf("%s: backend %q need %b; want a at once", req.Path, got, need)
		}
	}
}

// Stale-tolerant reads go to another cluster by operation and consistency level.
func TestDecideByOperationAndConsistency(t *testing.T) {
	p := routedPort(t, nil,
		config.Route{Backend: "a"},
		config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldOperation, "read"), cond(config.FieldConsistency, "Bounded", "Eventually")}})
	known := router.NameDB | router.NameCollection | router.NameConsistency | router.NameSize
	for _, tc := range []struct {
		method, level string
		want          string
		needs         bool
	}{
		{"Search", "Bounded", "b", true}, {"Query", "Eventually", "b", true}, {"Search", "Strong", "a", true},
		{"Search", "", "a", true}, {"Insert", "", "a", false}, {"CreateCollection", "Bounded", "a", false},
	} {
		_, need, _ := decide(p, grpcRequest(tc.method), nil)
		if (need&router.NameConsistency != 0) != tc.needs {
			t.Errorf("%s: need %b; consistency asked for = %v, want %v", tc.method, need, need&router.NameConsistency != 0, tc.needs)
		}
		if got, _, _ := decide(p, grpcRequest(tc.method), &router.Names{Consistency: tc.level, Known: known}); got != tc.want {
			t.Errorf("%s %s: backend %q, want %s", tc.method, tc.level, got, tc.want)
		}
	}
}

// A route without conditions costs what it cost before: no allocation.
func TestDecideWithoutConditionsAllocatesNothing(t *testing.T) {
	p := routedPort(t, nil, config.Route{Backend: "a"})
	snap := p.Snapshot()
	l := snap.Listeners[80]
	req := grpcRequest("Search")
	if n := testing.AllocsPerRun(1000, func() { Choose(snap, l, req, nil) }); n != 0 {
		t.Errorf("Choose allocates %v times per call", n)
	}
}

func TestWeightedSplit(t *testing.T) {
	p := routedPort(t, nil, config.Route{Forward: []config.WeightedBackend{{Backend: "a", Weight: 90}, {Backend: "b", Weight: 10}, {Backend: "c", Weight: 0}}})
	counts := map[string]int{}
	var order []string
	for range 1000 {
		got, _, f := decide(p, grpcRequest("Search"), nil)
		if f != nil {
			t.Fatal(f)
		}
		counts[got]++
		if len(order) < 10 {
			order = append(order, got)
		}
	}
	if counts["a"] != 900 || counts["b"] != 100 || strings.Join(order, "") != "aaaaabaaaa" {
		t.Errorf("split %v over 1000 calls, first ten %v; want exactly 900/100/0, interleaved", counts, order)
	}
	// A target with no endpoint to take calls is passed over.
	p.Snapshot().Backends["a"].Endpoints[0].Eject(time.Minute)
	for range 100 {
		if got, _, _ := decide(p, grpcRequest("Search"), nil); got != "b" {
			t.Fatalf("backend %q while a has no endpoint; want b", got)
		}
	}
}

func TestFixedResponse(t *testing.T) {
	p := routedPort(t, nil, config.Route{Fixed: &config.FixedResponse{StatusCode: 503, MessageBody: "down for maintenance"}})
	got, _, f := decide(p, grpcRequest("Search"), nil)
	if got != "" || f == nil || f.Code != codes.Unavailable || f.Msg != "down for maintenance" {
		t.Errorf("backend %q failure %v; want UNAVAILABLE down for maintenance", got, f)
	}
	for status, code := range map[int]codes.Code{404: codes.Unimplemented, 403: codes.PermissionDenied, 200: codes.Unknown, 429: codes.Unavailable} {
		if f := Fixed(&config.FixedResponse{StatusCode: status}); f.Code != code || f.Msg == "" {
			t.Errorf("fixed %d: %v; want %v", status, f, code)
		}
	}
}

// Over a limit the call gets the reply Milvus sends over its quota, of the method's own
// type; the limits that read the database make the decision wait for it.
func TestLimitReply(t *testing.T) {
	p := routedPort(t, []config.RateLimit{{Name: "tenant-b", Databases: []string{"tenant_b"}, Calls: 1, Burst: 1}}, config.Route{Backend: "a"})
	req := grpcRequest("Search", hpack.HeaderField{Name: "dbname", Value: "tenant_b"})
	var c Call
	c.Begin(p, req.Path, true, time.Now())
	_, need, _ := c.decide(req, nil)
	if need&router.NameDB == 0 {
		t.Fatalf("need %b: a limit on the database must wait for the first message", need)
	}
	names := &router.Names{Known: need}
	e, _, _ := c.decide(req, names)
	if reply, f := c.limit(e, req, names, zeroClock); reply != nil || f != nil {
		t.Fatalf("first call limited: %v", f)
	}
	reply, f := c.limit(e, req, names, zeroClock)
	var res milvuspb.SearchResults
	if f != nil || proto.Unmarshal(reply, &res) != nil {
		t.Fatalf("second call: reply %x failure %v", reply, f)
	}
	if st := res.GetStatus(); st.GetErrorCode() != commonpb.ErrorCode_RateLimit || st.GetCode() != milvus.RateLimitCode || c.Rec.MilvusCode != milvus.RateLimitCode {
		t.Errorf("status %v, record code %d", st, c.Rec.MilvusCode)
	}
	// The record tells this refusal from one Milvus answered: it names the limit.
	if c.Rec.RateLimit != "tenant-b" || c.Rec.Ingress != "ns/ing" {
		t.Errorf("record names limit %q of ingress %q; want tenant-b of ns/ing", c.Rec.RateLimit, c.Rec.Ingress)
	}
	other := grpcRequest("Search", hpack.HeaderField{Name: "dbname", Value: "tenant_c"})
	if reply, _ := c.limit(e, other, names, zeroClock); reply != nil {
		t.Error("a call of another database was limited")
	}
}

// zeroClock keeps the limits' time still: the second call is over a limit of one a second.
func zeroClock() int64 { return 0 }

func BenchmarkChoose(b *testing.B) {
	known := router.NameDB | router.NameCollection | router.NameSize
	for _, bc := range []struct {
		name  string
		route config.Route
		names *router.Names
	}{
		{"no conditions", config.Route{Backend: "a"}, nil},
		{"collection", config.Route{Backend: "b", Conditions: []config.Condition{cond(config.FieldCollection, "logs_*")}}, &router.Names{Collection: "users", Known: known}},
		{"weighted", config.Route{Forward: []config.WeightedBackend{{Backend: "a", Weight: 9}, {Backend: "b", Weight: 1}}}, nil},
	} {
		p := routedPort(b, nil, bc.route, config.Route{Backend: "c", Path: "/milvus.proto.milvus.MilvusService/", PathType: config.PathPrefix})
		snap := p.Snapshot()
		l := snap.Listeners[80]
		req := grpcRequest("Search")
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Choose(snap, l, req, bc.names)
			}
		})
	}
}
