package call

import (
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// standbyPort routes every call to a, whose standby b takes all the reads that accept
// stale data, staleness behind the primary.
func standbyPort(t testing.TB, staleness time.Duration) *Port {
	t.Helper()
	m := routedModel(nil, config.Route{Backend: "a"})
	m.Backends["a"].Standby = &config.Standby{Backend: "b", Weight: 100, Staleness: config.Duration(staleness)}
	return compiledPort(t, m)
}

// routeMessage routes a call of method whose first request message is msg, as the data
// path does: the headers, then the message; it returns the backend that takes it.
func routeMessage(t *testing.T, p *Port, method string, msg proto.Message) string {
	t.Helper()
	req := grpcRequest(method)
	var c Call
	c.Begin(p, req.Path, true, time.Now())
	d := c.Route(req)
	if d.Wait {
		var ready bool
		if d, ready = c.Hold(framed(t, msg), false); !ready {
			t.Fatalf("%s %v: no decision once the whole message was read", method, msg)
		}
	}
	if !d.Go() || c.Backend() == nil {
		t.Fatalf("%s %v: %+v, not routed to a backend", method, msg, d)
	}
	return c.Backend().Key
}

// hybridTS is the Milvus hybrid timestamp of t: physical milliseconds, then 18 logical bits.
func hybridTS(t time.Time) uint64 { return uint64(t.UnixMilli())<<18 | 7 }

// A Bounded or Eventually read goes to the standby unless its guarantee_timestamp asks
// for data newer than the standby's staleness allows; the timestamps the clients send to
// mean "no particular time" (pymilvus: 1 with Eventually, 2 with Bounded; the Go SDK: none)
// pass. Strong and Session reads stay on the primary whatever their timestamp.
func TestStandbyRespectsGuaranteeTimestamp(t *testing.T) {
	const (
		strong     = commonpb.ConsistencyLevel_Strong
		session    = commonpb.ConsistencyLevel_Session
		bounded    = commonpb.ConsistencyLevel_Bounded
		eventually = commonpb.ConsistencyLevel_Eventually
	)
	now := time.Now()
	search := func(level commonpb.ConsistencyLevel, g uint64) *milvuspb.SearchRequest {
		return &milvuspb.SearchRequest{CollectionName: "books", Dsl: "id > 0", ConsistencyLevel: level, GuaranteeTimestamp: g}
	}
	query := func(level commonpb.ConsistencyLevel, g uint64) *milvuspb.QueryRequest {
		return &milvuspb.QueryRequest{CollectionName: "books", Expr: "id > 0", ConsistencyLevel: level, GuaranteeTimestamp: g}
	}
	five := standbyPort(t, 5*time.Second)
	two := standbyPort(t, 2*time.Second)
	cases := []struct {
		name   string
		p      *Port
		method string
		msg    proto.Message
		want   string
	}{
		{"pymilvus Bounded (guarantee 2)", five, "Search", search(bounded, 2), "b"},
		{"pymilvus Eventually (guarantee 1)", five, "Query", query(eventually, 1), "b"},
		{"Go SDK Eventually (no guarantee)", five, "Search", search(eventually, 0), "b"},
		{"Eventually, a time a minute ago", five, "Search", search(eventually, hybridTS(now.Add(-time.Minute))), "b"},
		{"Eventually, the write of a second ago", five, "Query", query(eventually, hybridTS(now.Add(-time.Second))), "a"},
		{"Bounded, a time 3 s ago, standby 5 s behind", five, "Search", search(bounded, hybridTS(now.Add(-3*time.Second))), "a"},
		{"Bounded, a time 3 s ago, standby 2 s behind", two, "Search", search(bounded, hybridTS(now.Add(-3*time.Second))), "b"},
		{"an iterator's next page, its first page's time", five, "Query", query(eventually, hybridTS(now)), "a"},
		{"Bounded HybridSearch, a time in the future", five, "HybridSearch",
			&milvuspb.HybridSearchRequest{CollectionName: "books", ConsistencyLevel: bounded, GuaranteeTimestamp: hybridTS(now.Add(time.Hour))}, "a"},
		{"Session, an old write", five, "Search", search(session, hybridTS(now.Add(-time.Hour))), "a"},
		{"Strong", five, "Query", query(strong, 0), "a"},
		{"the collection's level", five, "Search", &milvuspb.SearchRequest{CollectionName: "books", UseDefaultConsistency: true, GuaranteeTimestamp: 1}, "a"},
	}
	for _, tc := range cases {
		if got := routeMessage(t, tc.p, tc.method, tc.msg); got != tc.want {
			t.Errorf("%s: went to %s, want %s", tc.name, got, tc.want)
		}
	}
}
