package dataplane_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// Routes on what a call's first message says: the balancer holds the message's first
// bytes, reads the names, and only then chooses the backend. Blue is the default cluster;
// green takes the calls the condition picks.

const (
	blueKey  = "milvus/milvus-blue:19530"
	greenKey = "milvus/milvus-green:19530"
)

// routed serves two clusters, blue and green (one fake backend each), behind routes:
// the condition's route to green, then everything else to blue; with limits as the
// Ingress's milvus-lb.io/rate-limits.
func routed(t *testing.T, limits []config.RateLimit, conds ...config.Condition) (l *lb, blue, green *fakemilvus.Server) {
	t.Helper()
	bs := startBackends(t, 2, fakemilvus.Options{})
	l = newLB(t, bs, nil)
	l.blueGreen(bs[:1], bs[1:], 100, 0)
	var routes []config.Route
	if conds != nil {
		routes = append(routes, config.Route{Host: host, Path: "/", PathType: config.PathPrefix, Ingress: "milvus/milvus-demo", Rule: "green",
			Backend: greenKey, Conditions: conds})
	}
	routes = append(routes, config.Route{Host: host, Path: "/", PathType: config.PathPrefix, Ingress: "milvus/milvus-demo", Backend: blueKey})
	m := *l.model
	m.Listeners = append([]config.Listener(nil), m.Listeners...)
	for i := range m.Listeners {
		m.Listeners[i].Routes = routes
	}
	if limits != nil {
		m.RateLimits = map[string][]config.RateLimit{"milvus/milvus-demo": limits}
	}
	l.model = &m
	l.apply()
	return l, bs[0], bs[1]
}

// wentTo checks that of the Searches, green got the ones the test names and blue the rest.
func wentTo(t *testing.T, blue, green *fakemilvus.Server, wantBlue, wantGreen int64) {
	t.Helper()
	if b, g := blue.Count(searchMethod), green.Count(searchMethod); b != wantBlue || g != wantGreen {
		t.Errorf("blue got %d Searches, green %d; want %d and %d", b, g, wantBlue, wantGreen)
	}
	blue.Reset()
	green.Reset()
}

func search(t *testing.T, c milvuspb.MilvusServiceClient, ctx context.Context, req *milvuspb.SearchRequest) *milvuspb.SearchResults {
	t.Helper()
	res, err := c.Search(ctx, req)
	if err != nil {
		t.Fatalf("Search %s/%s: %v", req.DbName, req.CollectionName, err)
	}
	return res
}

func cond(f config.ConditionField, values ...string) config.Condition {
	return config.Condition{Field: f, Values: values}
}

// A tenant's database goes to its cluster, whether the request's db_name field names it
// (the ORM's db_name) or the dbname metadata does (MilvusClient(db_name=...)); the field
// wins over the metadata, as in Milvus.
func TestRouteByDatabase(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldDatabase, "tenant_b"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	search(t, c, ctx, &milvuspb.SearchRequest{DbName: "tenant_b", CollectionName: "c1"})
	wentTo(t, blue, green, 0, 1)
	search(t, c, metadata.AppendToOutgoingContext(ctx, "dbname", "tenant_b"), &milvuspb.SearchRequest{CollectionName: "c1"})
	wentTo(t, blue, green, 0, 1)
	search(t, c, metadata.AppendToOutgoingContext(ctx, "dbname", "tenant_b"), &milvuspb.SearchRequest{DbName: "tenant_a", CollectionName: "c1"})
	search(t, c, ctx, &milvuspb.SearchRequest{DbName: "tenant_a", CollectionName: "c1"})
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1"}) // the default database
	wentTo(t, blue, green, 3, 0)
}

// Collections by name or glob.
func TestRouteByCollection(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldCollection, "logs_*", "events"))
	c := l.dialTLS()
	ctx := ctxTimeout(t, 20*time.Second)
	for _, name := range []string{"logs_2024", "events", "logs_"} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: name})
	}
	wentTo(t, blue, green, 0, 3)
	for _, name := range []string{"users", "events_old", "xlogs_1", ""} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: name})
	}
	wentTo(t, blue, green, 4, 0)
}

// Writes to one cluster, reads to the other: the operation is known from the method, so
// nothing is held; a Milvus condition alongside it still is read from the message.
func TestRouteByOperation(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldOperation, "write"), cond(config.FieldCollection, "c*"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	if _, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "other", NumRows: 1}); err != nil {
		t.Fatal(err)
	}
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1"})
	const insert = "/milvus.proto.milvus.MilvusService/Insert"
	if b, g := blue.Count(insert), green.Count(insert); b != 1 || g != 1 {
		t.Errorf("Inserts: blue %d, green %d; want the one into c1 on green", b, g)
	}
	wentTo(t, blue, green, 1, 0)
}

// Reads that accept stale data by their consistency level; a request that leaves the
// level to the collection (use_default_consistency, pymilvus's default) says none.
func TestRouteByConsistencyLevel(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldConsistency, "Bounded", "Eventually"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for _, lvl := range []commonpb.ConsistencyLevel{commonpb.ConsistencyLevel_Bounded, commonpb.ConsistencyLevel_Eventually} {
		search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: lvl})
	}
	wentTo(t, blue, green, 0, 2)
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Strong})
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Session})
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1", ConsistencyLevel: commonpb.ConsistencyLevel_Bounded, UseDefaultConsistency: true})
	wentTo(t, blue, green, 3, 0)
}

// A call over a rate limit gets what Milvus sends over its quota: gRPC OK, a reply of the
// method's own type whose Status carries the rate-limit code; the backend never sees it.
func TestRateLimitedAsMilvus(t *testing.T) {
	l, blue, _ := routed(t, []config.RateLimit{{Name: "tenant-b-searches", Databases: []string{"tenant_b"}, Operations: []string{"read"}, Calls: 0.001, Burst: 1000}},
		cond(config.FieldConsistency, "Eventually"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	st := search(t, c, ctx, &milvuspb.SearchRequest{DbName: "tenant_b", CollectionName: "c1"}).GetStatus()
	if st.GetCode() == milvus.RateLimitCode {
		t.Fatalf("the first call was limited: %v", st)
	}
	st = search(t, c, ctx, &milvuspb.SearchRequest{DbName: "tenant_b", CollectionName: "c1"}).GetStatus()
	if st.GetCode() != milvus.RateLimitCode || st.GetErrorCode() != commonpb.ErrorCode_RateLimit || !bytes.Contains([]byte(st.GetReason()), []byte("tenant-b-searches")) {
		t.Errorf("second call's status %v; want Milvus's rate-limit reply naming the limit", st)
	}
	// Another tenant is not limited, nor are writes.
	search(t, c, ctx, &milvuspb.SearchRequest{DbName: "tenant_a", CollectionName: "c1"})
	if res, err := c.Insert(ctx, &milvuspb.InsertRequest{DbName: "tenant_b", CollectionName: "c1", NumRows: 1}); err != nil || res.GetStatus().GetCode() == milvus.RateLimitCode {
		t.Errorf("an insert was limited: %v %v", res.GetStatus(), err)
	}
	if n := blue.Count(searchMethod); n != 2 {
		t.Errorf("the backend got %d Searches; want 2 (the limited one answered by the balancer)", n)
	}
	// Refused calls give the connection its window back: more of them than the window
	// holds go on one connection. A big Search's level comes late: it is held 64 KiB.
	big := bigSearch(100<<10, commonpb.ConsistencyLevel_Bounded)
	for range 100 {
		if st := search(t, c, ctx, big).GetStatus(); st.GetCode() != milvus.RateLimitCode {
			t.Fatalf("status %v; want the rate-limit reply", st)
		}
	}
}

// bigSearch is a Search whose expression takes n bytes: it comes before the consistency
// level (Go writes fields in number order, the vectors last as a oneof member), so with n
// over 64 KiB the balancer cannot read the level in time, as with pymilvus, which sends
// the vectors first.
func bigSearch(n int, lvl commonpb.ConsistencyLevel) *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{DbName: "tenant_b", CollectionName: "c1", Dsl: strings.Repeat("x", n), ConsistencyLevel: lvl, Nq: 1,
		SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: []byte{7}}}
}

// A name past the first 64 KiB is not waited for: the call routes by its other
// conditions (here: none holds, so it goes to the default), and arrives whole.
func TestNamesBeyond64KiBRouteByTheOthers(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldConsistency, "Bounded"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	small := bigSearch(1000, commonpb.ConsistencyLevel_Bounded)
	search(t, c, ctx, small)
	wentTo(t, blue, green, 0, 1)
	big := bigSearch(200<<10, commonpb.ConsistencyLevel_Bounded)
	search(t, c, ctx, big)
	wentTo(t, blue, green, 1, 0)
}

// The database of a large request is read from its first bytes, whatever follows.
func TestLargeRequestRoutedByItsFirstBytes(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldDatabase, "tenant_b"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	search(t, c, ctx, bigSearch(3<<20, commonpb.ConsistencyLevel_Strong))
	wentTo(t, blue, green, 0, 1)
}

// Many calls on one connection whose first messages are larger than what is waited for,
// all at once: together they are more than the connection's window, yet none waits for
// another (the connection's held bytes are bounded below its window).
func TestManyHeldCallsOnOneConnection(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldConsistency, "Bounded"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 60*time.Second)
	var wg sync.WaitGroup
	const n = 200
	start := make(chan struct{})
	for range n {
		req := bigSearch(100<<10, commonpb.ConsistencyLevel_Bounded)
		wg.Go(func() {
			<-start
			if _, err := c.Search(ctx, req); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if b, g := blue.Count(searchMethod), green.Count(searchMethod); b+g != n {
		t.Errorf("blue %d + green %d Searches; want %d", b, g, n)
	}
}

// Streams are not held (their first message may be long in coming): a route on the
// database does not take them, and they flow as before.
func TestStreamNotHeld(t *testing.T) {
	l, blue, green := routed(t, nil, cond(config.FieldDatabase, "*"))
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	rs, err := c.CreateReplicateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&milvuspb.ReplicateRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = rs.CloseSend()
	const method = "/milvus.proto.milvus.MilvusService/CreateReplicateStream"
	for blue.Count(method) == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // counted when the handler returns
	}
	if b, g := blue.Count(method), green.Count(method); b != 1 || g != 0 {
		t.Errorf("stream on blue %d, green %d; want the default route's", b, g)
	}
	search(t, c, ctx, &milvuspb.SearchRequest{CollectionName: "c1"})
	wentTo(t, blue, green, 0, 1)
}

// A held call needs no more of its request than a client may send before it has read a
// single frame of the balancer's (the HTTP/2 initial window, 65,535 bytes): a client
// that sends that much of a larger first message and waits gets its call routed, which
// the backend sees as the balancer's connection.
func TestHeldCallFitsTheInitialWindow(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := backend.Accept(); err == nil {
			accepted <- c
		}
	}()
	l := lbtest.Start(t, lbtest.Options{}, backend.Addr().String())
	m := *l.Plane.Gateway.Current().Model
	m.Listeners = append([]config.Listener(nil), m.Listeners...)
	for i := range m.Listeners {
		r := m.Listeners[i].Routes[0]
		held := r
		held.Conditions = []config.Condition{cond(config.FieldConsistency, "Bounded")}
		m.Listeners[i].Routes = []config.Route{held, r}
	}
	if _, err := l.Plane.Gateway.Apply(context.Background(), &m, nil); err != nil {
		t.Fatal(err)
	}

	nc, err := net.Dial("tcp", l.PlainAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, _ := proto.Marshal(bigSearch(100<<10, commonpb.ConsistencyLevel_Bounded))
	stream := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	stream = append(stream, msg...)[:65535]
	c := newRawH2(t, nc)
	c.headers(1, searchMethod)
	for p := stream; len(p) > 0; {
		k := min(len(p), 16384)
		if err := c.fr.WriteData(1, false, p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	select {
	case bc := <-accepted:
		bc.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("the call was not routed with the 65,535 bytes a client may send at first")
	}
}
