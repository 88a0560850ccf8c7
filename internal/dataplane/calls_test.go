package dataplane_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

const searchMethod = "/milvus.proto.milvus.MilvusService/Search"
const versionMethod = "/milvus.proto.milvus.MilvusService/GetVersion"

// One client connection, many calls: every backend gets its share, because balancing is
// per call and not per connection (the reason to put a Layer-7 balancer before Milvus).
func TestPerRequestRoundRobin(t *testing.T) {
	bs := startBackends(t, 3, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for range 300 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bs {
		if n := b.Count(versionMethod); n != 100 {
			t.Errorf("backend %s got %d of 300 calls, want 100 (round robin)", b.Name(), n)
		}
	}
}

func TestLeastOutstandingAvoidsBusyEndpoint(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{ingress.AnnotationTargetGroupAttributes: "load_balancing.algorithm.type=least_outstanding_requests"})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	// Pin one slow call on whichever backend gets it, then see the quick calls avoid it.
	slowDone := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, searchReq(map[string]string{fakemilvus.ParamSleep: "2s"}))
		slowDone <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	var busy *fakemilvus.Server
	for busy == nil && time.Now().Before(deadline) {
		for _, b := range bs {
			if b.Inflight() > 0 {
				busy = b
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if busy == nil {
		t.Fatal("slow call never reached a backend")
	}
	before := busy.Count(versionMethod)
	for range 50 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := busy.Count(versionMethod) - before; n != 0 {
		t.Errorf("busy backend got %d calls while another was idle", n)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

func TestWeightedRandomUsesAll(t *testing.T) {
	bs := startBackends(t, 3, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{ingress.AnnotationTargetGroupAttributes: "load_balancing.algorithm.type=weighted_random"})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for range 300 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bs {
		// Binomial(300, 1/3): below 60 has probability far under 1e-6.
		if n := b.Count(versionMethod); n < 60 {
			t.Errorf("backend %s got %d of 300 calls", b.Name(), n)
		}
	}
}

// An endpoint whose CheckHealth says is_healthy=false gets no new calls.
func TestUnhealthyEndpointGetsNoCalls(t *testing.T) {
	bs := startBackends(t, 3, fakemilvus.Options{})
	bs[1].SetHealthy(false)
	// The check's first result decides at once, and the first configuration waits for it.
	l := newLB(t, bs, map[string]string{ingress.AnnotationHealthCheckType: string(config.CheckMilvus)})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)
	for range 100 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := bs[1].Count(versionMethod); n != 0 {
		t.Errorf("unhealthy backend got %d calls", n)
	}
	if bs[0].Count(versionMethod)+bs[2].Count(versionMethod) != 100 {
		t.Errorf("healthy backends got %d+%d calls, want 100", bs[0].Count(versionMethod), bs[2].Count(versionMethod))
	}
}

func TestMetadataAndTrailersPassThrough(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c := l.dialTLS()
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t, 10*time.Second),
		"authorization", "cm9vdDpNaWx2dXM=", "dbname", "db1", "identifier", "42", "client-request-id", "req-7")
	var hdr, trl metadata.MD
	if _, err := c.Search(ctx, searchReq(nil), grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
		t.Fatal(err)
	}
	calls := bs[0].Calls()
	if len(calls) != 1 {
		t.Fatalf("backend saw %d calls, want 1", len(calls))
	}
	md := calls[0].MD
	for k, want := range map[string]string{"authorization": "cm9vdDpNaWx2dXM=", "dbname": "db1", "identifier": "42", "client-request-id": "req-7"} {
		if got := md.Get(k); len(got) != 1 || got[0] != want {
			t.Errorf("backend metadata %s = %q, want %q", k, got, want)
		}
	}
	if got := hdr.Get(fakemilvus.BackendHeader); len(got) != 1 || got[0] != "b0" {
		t.Errorf("response header %s = %q, want b0", fakemilvus.BackendHeader, got)
	}
	// The client's 10 s deadline travels as grpc-timeout.
	if d := time.Until(calls[0].Deadline); d <= 0 || d > 10*time.Second {
		t.Errorf("backend deadline is %v away, want the client's (at most 10 s)", d)
	}
}

// Errors without a message come back as Trailers-Only responses; they must reach the client
// intact every time (a known failure mode of reverse proxies: golang/go#56317).
func TestTrailersOnlyErrors(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	bs[0].SetFailure(codes.PermissionDenied, "privilege not granted: Search")
	l := newLB(t, bs, nil)
	for _, c := range []milvuspb.MilvusServiceClient{first(l.dial()), l.dialTLS()} {
		ctx := ctxTimeout(t, 10*time.Second)
		for range 50 {
			_, err := c.Search(ctx, searchReq(nil))
			if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "privilege not granted: Search" {
				t.Fatalf("got %v, want PermissionDenied with the backend's message", err)
			}
		}
	}
}

func TestNoRuleAndNoEndpoint(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, _ := l.dial(grpc.WithAuthority("other.example.com"))
	_, err := c.GetVersion(ctxTimeout(t, 5*time.Second), &milvuspb.GetVersionRequest{})
	if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), `no rule matches host "other.example.com"`) {
		t.Errorf("unknown host: got %v", err)
	}

	l.SetEndpoints()
	c2, _ := l.dial()
	start := time.Now()
	_, err = c2.GetVersion(ctxTimeout(t, 5*time.Second), &milvuspb.GetVersionRequest{})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "no healthy endpoint for Service milvus/milvus-demo:19530") {
		t.Errorf("no endpoint: got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("no endpoint: answer took %v; it must not hang", time.Since(start))
	}
}

func TestDeadlineAndCancellationReachBackend(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, _ := l.dial()
	ctx := ctxTimeout(t, 300*time.Millisecond)
	_, err := c.Search(ctx, searchReq(map[string]string{fakemilvus.ParamSleep: "10s"}))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	call := waitCall(t, bs[0], searchMethod)
	if call.Deadline.IsZero() {
		t.Error("backend saw no deadline: grpc-timeout was not forwarded")
	}
	if !call.Cancelled {
		t.Error("backend call was not cancelled when the client's deadline passed")
	}

	bs[0].Reset()
	ctx2, cancel := contextWithCancel(t)
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err = c.Search(ctx2, searchReq(map[string]string{fakemilvus.ParamSleep: "10s"}))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("got %v, want Canceled", err)
	}
	if call := waitCall(t, bs[0], searchMethod); !call.Cancelled || !call.Deadline.IsZero() {
		t.Errorf("client cancellation: backend call %+v, want cancelled without deadline", call)
	}
}

// Calls one after another on one connection each keep their own deadline, or none: the
// relay uses a finished call's stream, and its deadline timer, for the connection's next
// call (relay/reuse.go).
func TestDeadlinesOfCallsInTurn(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, _ := l.dial()
	for i, tc := range []struct {
		timeout time.Duration // 0: no deadline
		sleep   string
		want    codes.Code
	}{
		{200 * time.Millisecond, "", codes.OK},
		{0, "600ms", codes.OK}, // not cut by the last call's 200 ms
		{10 * time.Second, "", codes.OK},
		{200 * time.Millisecond, "10s", codes.DeadlineExceeded},
		{0, "600ms", codes.OK},
		{300 * time.Millisecond, "10s", codes.DeadlineExceeded},
	} {
		ctx := ctxTimeout(t, time.Minute)
		if tc.timeout > 0 {
			ctx = ctxTimeout(t, tc.timeout)
		}
		params := map[string]string{}
		if tc.sleep != "" {
			params[fakemilvus.ParamSleep] = tc.sleep
		}
		start, before := time.Now(), bs[0].Count(searchMethod)
		_, err := c.Search(ctx, searchReq(params))
		if got := status.Code(err); got != tc.want {
			t.Fatalf("call %d (timeout %v, backend sleeps %q): %v after %v, want %v", i, tc.timeout, tc.sleep, err, time.Since(start), tc.want)
		}
		// One attempt: a timer of an earlier call firing would have ended it, and the
		// read would have been tried again.
		if n := bs[0].Count(searchMethod) - before; tc.want == codes.OK && n != 1 {
			t.Fatalf("call %d (timeout %v, backend sleeps %q): the backend served %d attempts, want 1", i, tc.timeout, tc.sleep, n)
		}
	}
}

// Calls one after another on one connection each reach the backend with their own
// metadata, and each record has its own names: a finished call's stream keeps its header
// list and its message scanners for the connection's next call (relay/reuse.go), and
// nothing of the last call may be left in them.
func TestHeadersOfCallsInTurn(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	recs := &records{}
	l := lbtest.Start(t, lbtest.Options{Observer: recs}, lbtest.Addrs(bs)...)
	c, _ := l.Dial(t, false)
	calls := []struct {
		md         []string // key, value pairs
		collection string
	}{
		{[]string{"dbname", "db1", "x-first", "1", "x-second", "2", "x-third", "3"}, "c1"},
		{nil, "c2"}, // fewer fields than the last call: none of its may follow
		{[]string{"dbname", "db3"}, "c3"},
		{[]string{"x-second", "two"}, ""},
	}
	for i, tc := range calls {
		ctx := metadata.AppendToOutgoingContext(ctxTimeout(t, 10*time.Second), tc.md...)
		if _, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: tc.collection, Nq: 1}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	got := bs[0].Calls()
	recsGot := recs.wait(t, len(calls))
	if len(got) != len(calls) {
		t.Fatalf("the backend served %d calls, want %d", len(got), len(calls))
	}
	for i, tc := range calls {
		want := metadata.Pairs(tc.md...)
		for _, key := range []string{"dbname", "x-first", "x-second", "x-third"} {
			if g, w := got[i].MD.Get(key), want.Get(key); !slices.Equal(g, w) {
				t.Errorf("call %d: the backend saw %s %q, want %q", i, key, g, w)
			}
		}
		db := "default"
		if v := want.Get("dbname"); len(v) > 0 {
			db = v[0]
		}
		if r := recsGot[i]; r.DB != db || r.Collection != tc.collection {
			t.Errorf("call %d: recorded database %q collection %q, want %q %q", i, r.DB, r.Collection, db, tc.collection)
		}
	}
}

// A 64 MiB insert and a 200 MiB response pass over TLS (Milvus's own limits are 64 MiB in
// and 256 MiB out; nothing in the balancer may impose gRPC's 4 MiB default).
func TestLargeMessages(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	recs := &records{}
	l := lbtest.Start(t, lbtest.Options{Observer: recs}, lbtest.Addrs(bs)...)
	c, _ := l.Dial(t, true)
	// A bound, not a goal: under -race on a busy 2-core machine the 200 MiB reply took
	// over a minute.
	ctx := ctxTimeout(t, 3*time.Minute)

	const rows, dim = 1 << 14, 1024 // 16384 rows × 1024 floats × 4 bytes = 64 MiB
	vec := make([]float32, rows*dim)
	ins := &milvuspb.InsertRequest{CollectionName: "c1", NumRows: rows, FieldsData: []*schemapb.FieldData{{
		FieldName: "vector", Type: schemapb.DataType_FloatVector,
		Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vec}}}},
	}}}
	res, err := c.Insert(ctx, ins)
	if err != nil {
		t.Fatalf("64 MiB insert: %v", err)
	}
	if res.GetInsertCnt() != rows {
		t.Errorf("insert count %d, want %d", res.GetInsertCnt(), rows)
	}
	if call := waitCall(t, bs[0], "/milvus.proto.milvus.MilvusService/Insert"); call.RequestBytes < 64<<20 {
		t.Errorf("backend received %d bytes, want at least 64 MiB", call.RequestBytes)
	}
	// The record (the access log's line) has the insert's names and row count, which
	// come after the 64 MiB of vectors in this encoding: read as they passed.
	if r := recs.wait(t, 1)[0]; r.Method != "Insert" || r.Collection != "c1" || r.DB != "default" || r.Rows != rows || r.RequestBytes < 64<<20 {
		t.Errorf("the record of the 64 MiB insert: method %s collection %q db %q rows %d request bytes %d; want Insert c1 default %d, 64 MiB",
			r.Method, r.Collection, r.DB, r.Rows, r.RequestBytes, rows)
	}

	sr, err := c.Search(ctx, searchReq(map[string]string{fakemilvus.ParamResultBytes: strconv.Itoa(200 << 20)}))
	if err != nil {
		t.Fatalf("200 MiB response: %v", err)
	}
	if n := protoSize(sr); n < 200<<20 {
		t.Errorf("response was %d bytes, want at least 200 MiB", n)
	}
	if r := recs.wait(t, 2)[1]; r.Method != "Search" || r.ResponseBytes < 200<<20 || r.RequestBytes == 0 || r.RequestBytes > 1<<20 {
		t.Errorf("the record of the search: method %s, %d bytes in, %d out; want Search, a few in, 200 MiB out", r.Method, r.RequestBytes, r.ResponseBytes)
	}
}

func TestStreamingRPCs(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c := l.dialTLS()
	ctx := ctxTimeout(t, 10*time.Second)

	ds, err := c.DumpMessages(ctx, &milvuspb.DumpMessagesRequest{StartTimetick: 1, EndTimetick: 10})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := ds.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("DumpMessages after %d messages: %v", n, err)
		}
		n++
	}
	if n != 10 {
		t.Errorf("DumpMessages gave %d messages, want 10", n)
	}

	rs, err := c.CreateReplicateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := rs.Send(&milvuspb.ReplicateRequest{}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
	}
	if err := rs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
}

// A killed backend fails the calls it had (UNAVAILABLE), and new calls go to the others.
func TestKilledBackend(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, _ := l.dial()
	ctx := ctxTimeout(t, 20*time.Second)

	// Round robin puts one call on each backend. The read in flight on the backend that
	// dies is sent again to the other (it changes nothing, and no reply had begun): both
	// calls succeed, the second answered by the survivor.
	type answer struct {
		backend string
		err     error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			var hdr metadata.MD
			_, err := c.Search(ctx, searchReq(map[string]string{fakemilvus.ParamSleep: "1s"}), grpc.Header(&hdr))
			answers <- answer{strings.Join(hdr.Get(fakemilvus.BackendHeader), ","), err}
		}()
	}
	for bs[0].Inflight() == 0 || bs[1].Inflight() == 0 {
		if ctx.Err() != nil {
			t.Fatal("calls never reached both backends")
		}
		time.Sleep(5 * time.Millisecond)
	}
	bs[0].Kill()
	for range 2 {
		if a := <-answers; a.err != nil || a.backend != "b1" {
			t.Errorf("search in flight when b0 died: answered by %q, %v; want b1, OK", a.backend, a.err)
		}
	}
	before := bs[1].Count(versionMethod)
	for range 20 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatalf("call after the kill: %v", err)
		}
	}
	if got := bs[1].Count(versionMethod) - before; got != 20 {
		t.Errorf("surviving backend got %d of 20 calls", got)
	}
}

// Clients such as pymilvus ping every 5-10 s with no call in flight. The balancer must
// accept that (no GOAWAY too_many_pings) and keep the idle connection.
func TestIdlePingsKeepConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of idle pings")
	}
	t.Parallel()
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	c, cc := l.dial(grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	// grpc-go hands the ready picker to calls before it sets the channel's state, so on a
	// loaded machine the first call can return while the state still says CONNECTING.
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("connection state %s after a call that worked", s)
		}
	}
	// Any change from READY in the next 30 s, however short, is the connection dropped.
	idle, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if cc.WaitForStateChange(idle, connectivity.Ready) {
		t.Fatalf("connection left READY (now %s) during idle pings; the balancer dropped it", cc.GetState())
	}
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}
}

// Milvus REST v2 (HTTP/1.1 POST on the gRPC port) goes to the backend as HTTP/1.1.
func TestRESTOverHTTP1(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{REST: true})
	l := newLB(t, bs, nil)
	seen := map[string]int{}
	for range 4 {
		resp, body := listCollections(t, l.plain)
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"code":0`)) {
			t.Fatalf("REST answer %d %s", resp.StatusCode, body)
		}
		seen[resp.Header.Get("X-Fake-Backend")]++
	}
	if seen["b0"] != 2 || seen["b1"] != 2 {
		t.Errorf("REST calls per backend %v, want 2 each", seen)
	}
	// No healthy endpoint is 503 for REST.
	l.SetEndpoints()
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(l.plain)+"/v2/vectordb/collections/list", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no endpoint: REST status %d, want 503", resp.StatusCode)
	}
}

// listCollections makes Milvus REST's collections/list call to host on the HTTP port.
func listCollections(t *testing.T, port int) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(port)+"/v2/vectordb/collections/list", strings.NewReader(`{"dbName":"_default"}`))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func searchReq(params map[string]string) *milvuspb.SearchRequest {
	r := &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1}
	for k, v := range params {
		r.SearchParams = append(r.SearchParams, &commonpb.KeyValuePair{Key: k, Value: v})
	}
	return r
}

func waitCall(t *testing.T, b *fakemilvus.Server, method string) fakemilvus.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range b.Calls() {
			if c.Method == method {
				return c
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("backend %s never finished a %s call", b.Name(), method)
	return fakemilvus.Call{}
}

func first[A, B any](a A, _ B) A { return a }

// A client that dials an address and sets only the TLS server name (grpc-js, and so the
// Milvus Node SDK, with serverName) is routed by the server name.
func TestRouteBySNIWhenAuthorityIsAnAddress(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	// grpc-go itself refuses an authority other than the server name, so TLS is dialled
	// here and gRPC runs over it as grpc-js does.
	tlsDial := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		d := tls.Dialer{Config: &tls.Config{RootCAs: l.ca.Pool(), ServerName: host, NextProtos: []string{"h2"}}}
		return d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(l.tlsPort))
	})
	c, _ := l.dial(tlsDial, grpc.WithAuthority("127.0.0.1:"+strconv.Itoa(l.tlsPort)))
	if _, err := c.GetVersion(ctxTimeout(t, 10*time.Second), &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatalf("authority 127.0.0.1, SNI %s: %v", host, err)
	}
	// Without TLS there is no server name: an address matches no host rule.
	c3, _ := l.dial(grpc.WithAuthority("127.0.0.1:" + strconv.Itoa(l.plain)))
	_, err := c3.GetVersion(ctxTimeout(t, 10*time.Second), &milvuspb.GetVersionRequest{})
	if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), `no rule matches host "127.0.0.1"`) {
		t.Errorf("h2c with an address: %v", err)
	}
}

// Many large inserts at once, from several client connections onto one backend
// connection whose socket fills up: every message must arrive byte for byte as sent. (The
// relay once let a second writer start while the first still held buffers, reordering
// frames on the backend connection; only a byte-for-byte check sees that, as the
// reordered frames still decode.)
func TestConcurrentLargeInsertsArriveIntact(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{DigestRequests: true})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, 2*time.Minute)
	const conns, perConn, rounds = 4, 4, 2
	const rows, dim = 1 << 10, 1024 // 4 MiB each
	var mu sync.Mutex
	sent := map[[32]byte]bool{}
	clients := make([]milvuspb.MilvusServiceClient, conns)
	for i := range clients {
		clients[i] = l.dialTLS()
	}
	concurrently(t, conns*perConn, func(n int) error {
		for r := range rounds {
			vec := make([]float32, rows*dim)
			for k := range vec {
				vec[k] = float32(n*10+r) + float32(k%977)/977
			}
			req := &milvuspb.InsertRequest{CollectionName: "c1", NumRows: rows, FieldsData: []*schemapb.FieldData{{
				FieldName: "vector", Type: schemapb.DataType_FloatVector,
				Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vec}}}},
			}}}
			mu.Lock()
			sent[fakemilvus.Digest(req)] = true
			mu.Unlock()
			if _, err := clients[n%conns].Insert(ctx, req); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
		return nil
	})
	got := 0
	peers := map[string]bool{}
	for _, call := range bs[0].Calls() {
		if call.Method != "/milvus.proto.milvus.MilvusService/Insert" {
			continue
		}
		got++
		peers[call.Peer] = true
		if !sent[call.RequestDigest] {
			t.Errorf("the backend received an insert of %d bytes that no client sent: the relay damaged it", call.RequestBytes)
		}
	}
	if want := conns * perConn * rounds; got != want {
		t.Errorf("backend received %d inserts, want %d", got, want)
	}
	// 16 uploads at once are spread over more than one backend connection (each is read
	// by one goroutine of the backend under one window), but over a bounded number.
	if len(peers) < 2 || len(peers) > 4 {
		t.Errorf("the inserts reached the backend over %d connections, want 2 to 4", len(peers))
	}
}

// Small calls a few at a time share one backend connection: one write carries many of
// them, for the balancer and for the backend. Past 16 in flight on it they spread over
// more, up to four, which a backend reading each connection on one goroutine reads in
// parallel.
func TestSmallCallsShareABackendConnectionUntilMany(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, time.Minute)
	c := l.dialTLS()
	// A 768-dimension float vector's worth of bytes, as in a real search; each call
	// stays in flight for a while, so that those sent at once overlap.
	req := &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1,
		SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: make([]byte, 768*4)},
		SearchParams: []*commonpb.KeyValuePair{{Key: "topk", Value: "10"},
			{Key: fakemilvus.ParamSleep, Value: "20ms"}}}
	searches := func(callers int) map[string]int {
		t.Helper()
		concurrently(t, callers, func(int) error {
			for range 5 {
				if _, err := c.Search(ctx, req); err != nil {
					return fmt.Errorf("search: %w", err)
				}
			}
			return nil
		})
		peers := map[string]int{}
		for _, call := range bs[0].Calls() {
			if call.Method == searchMethod {
				peers[call.Peer]++
			}
		}
		return peers
	}
	if peers := searches(4); len(peers) != 1 {
		t.Fatalf("searches 4 at a time reached the backend over %d connections (%v), want one", len(peers), peers)
	}
	if peers := searches(32); len(peers) < 2 || len(peers) > 4 {
		t.Errorf("searches 32 at a time reached the backend over %d connections (%v), want 2 to 4", len(peers), peers)
	}
}

// concurrently runs call(0) to call(n-1) at once and fails t with the first error once
// all have returned.
func concurrently(t *testing.T, n int, call func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- call(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
