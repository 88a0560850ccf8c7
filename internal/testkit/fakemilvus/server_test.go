package fakemilvus

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// start runs a Server on a free loopback port, stopped at the end of the test.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func dial(t testing.TB, addr string, opts ...grpc.DialOption) milvuspb.MilvusServiceClient {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return milvuspb.NewMilvusServiceClient(cc)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestIdentityHeaderAndMetadata(t *testing.T) {
	s := start(t, Options{Name: "b1"})
	c := dial(t, s.Addr())
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "dbname", "db7", "authorization", "dXNlcjpwYXNz")

	var hdr metadata.MD
	v, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if v.GetVersion() != "b1" {
		t.Errorf("version = %q, want b1", v.GetVersion())
	}
	if got := hdr.Get(BackendHeader); len(got) != 1 || got[0] != "b1" {
		t.Errorf("header %s = %v, want [b1]", BackendHeader, got)
	}
	conn, err := c.Connect(ctx, &milvuspb.ConnectRequest{})
	if err != nil || conn.GetIdentifier() == 0 {
		t.Fatalf("Connect = %v, %v; want an identifier", conn, err)
	}
	if n := s.Count("GetVersion"); n != 1 {
		t.Errorf("Count(GetVersion) = %d, want 1", n)
	}
	if n := s.Count("/milvus.proto.milvus.MilvusService/Connect"); n != 1 {
		t.Errorf("Count(full Connect) = %d, want 1", n)
	}
	if s.Total() != 2 {
		t.Errorf("Total = %d, want 2", s.Total())
	}
	calls := s.Calls()
	if len(calls) != 2 {
		t.Fatalf("Calls = %d, want 2", len(calls))
	}
	if got := calls[0].MD.Get("dbname"); len(got) != 1 || got[0] != "db7" {
		t.Errorf("recorded dbname = %v", got)
	}
	if got := calls[0].MD.Get("authorization"); len(got) != 1 || got[0] != "dXNlcjpwYXNz" {
		t.Errorf("recorded authorization = %v", got)
	}
	if calls[0].Deadline.IsZero() {
		t.Errorf("deadline not recorded")
	}
	s.Reset()
	if s.Total() != 0 || s.Count("GetVersion") != 0 || len(s.Calls()) != 0 {
		t.Errorf("Reset left counters")
	}
}

func TestSearchShapeAndPadding(t *testing.T) {
	s := start(t, Options{Name: "b1"})
	c := dial(t, s.Addr())
	ctx := ctxT(t)

	res, err := c.Search(ctx, &milvuspb.SearchRequest{
		CollectionName: "c1",
		Nq:             3,
		SearchParams:   []*commonpb.KeyValuePair{{Key: "topk", Value: "5"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res.GetResults()
	if r.GetNumQueries() != 3 || r.GetTopK() != 5 || len(r.GetIds().GetIntId().GetData()) != 15 || len(r.GetTopks()) != 3 {
		t.Errorf("results nq=%d topk=%d ids=%d topks=%d, want 3 5 15 3",
			r.GetNumQueries(), r.GetTopK(), len(r.GetIds().GetIntId().GetData()), len(r.GetTopks()))
	}

	// Larger than gRPC's 4 MiB default in both directions of a balancer.
	const want = 32 << 20
	res, err = c.Search(ctx, &milvuspb.SearchRequest{
		CollectionName: "c1",
		SearchParams:   []*commonpb.KeyValuePair{{Key: ParamResultBytes, Value: "33554432"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := proto.Size(res); got < want-16 || got > want {
		t.Errorf("padded response = %d bytes, want about %d", got, want)
	}

	_, err = c.Search(ctx, &milvuspb.SearchRequest{SearchParams: []*commonpb.KeyValuePair{{Key: ParamSleep, Value: "soon"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad fake_sleep: %v, want InvalidArgument", err)
	}
}

func TestSleepSeesDeadlineAndCancellation(t *testing.T) {
	done := make(chan Call, 1)
	s := start(t, Options{OnCall: func(c Call) {
		if strings.HasSuffix(c.Method, "/Search") {
			done <- c
		}
	}})
	c := dial(t, s.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := c.Search(ctx, &milvuspb.SearchRequest{SearchParams: []*commonpb.KeyValuePair{{Key: ParamSleep, Value: "1m"}}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Search = %v, want DeadlineExceeded", err)
	}
	select {
	case call := <-done:
		if !call.Cancelled {
			t.Errorf("backend did not see the call end")
		}
		if d := call.Deadline.Sub(deadline).Abs(); d > 100*time.Millisecond {
			t.Errorf("backend deadline %v, client %v", call.Deadline, deadline)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend call still running 5s after the deadline")
	}

	// Cancellation without a deadline.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel2() }()
	_, err = c.Search(ctx2, &milvuspb.SearchRequest{SearchParams: []*commonpb.KeyValuePair{{Key: ParamSleep, Value: "1m"}}})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Search = %v, want Canceled", err)
	}
	select {
	case call := <-done:
		if !call.Cancelled || !call.Deadline.IsZero() {
			t.Errorf("call = cancelled %v deadline %v, want cancelled and no deadline", call.Cancelled, call.Deadline)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancellation did not reach the backend")
	}
}

func TestFailureIsTrailersOnly(t *testing.T) {
	s := start(t, Options{Name: "b2"})
	s.SetFailure(codes.Unavailable, "not ready yet")
	c := dial(t, s.Addr())

	var trl metadata.MD
	_, err := c.Search(ctxT(t), &milvuspb.SearchRequest{}, grpc.Trailer(&trl))
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || st.Message() != "not ready yet" {
		t.Fatalf("Search = %v, want Unavailable not ready yet", err)
	}
	if got := trl.Get(BackendHeader); len(got) != 1 || got[0] != "b2" {
		t.Errorf("trailer %s = %v", BackendHeader, got)
	}

	// On the wire: one HEADERS frame carrying grpc-status, no body, no trailers.
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/milvus.proto.milvus.MilvusService/GetVersion", bytes.NewReader(make([]byte, 5)))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Grpc-Status") != "14" || len(body) != 0 || len(resp.Trailer) != 0 {
		t.Errorf("not Trailers-Only: header %v, body %d bytes, trailer %v", resp.Header, len(body), resp.Trailer)
	}

	// The health service is not MilvusService and keeps answering.
	h := healthpb.NewHealthClient(dialConn(t, s.Addr()))
	if _, err := h.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health during failure: %v", err)
	}

	s.SetFailure(codes.OK, "")
	if _, err := c.Search(ctxT(t), &milvuspb.SearchRequest{}); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}

func dialConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestMilvusErrorInBodyAndGenericMethods(t *testing.T) {
	s := start(t, Options{})
	c := dial(t, s.Addr())
	ctx := ctxT(t)

	// A method with no behaviour of its own answers OK with an empty response.
	dbs, err := c.ListDatabases(ctx, &milvuspb.ListDatabasesRequest{})
	if err != nil || dbs.GetStatus().GetCode() != 0 {
		t.Fatalf("ListDatabases = %v, %v", dbs, err)
	}
	if st, err := c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{CollectionName: "c1"}); err != nil || st.GetCode() != 0 {
		t.Fatalf("CreateIndex = %v, %v", st, err)
	}
	if s.Count("ListDatabases") != 1 || s.Count("CreateIndex") != 1 {
		t.Errorf("generic methods not counted")
	}

	s.SetMilvusError(65535, "broken")
	dbs, err = c.ListDatabases(ctx, &milvuspb.ListDatabasesRequest{})
	if err != nil || dbs.GetStatus().GetCode() != 65535 || dbs.GetStatus().GetReason() != "broken" {
		t.Errorf("ListDatabases = %v, %v; want status 65535 in body", dbs, err)
	}
	st, err := c.CreateIndex(ctx, &milvuspb.CreateIndexRequest{})
	if err != nil || st.GetCode() != 65535 {
		t.Errorf("CreateIndex = %v, %v; want status 65535", st, err)
	}
	res, err := c.Search(ctx, &milvuspb.SearchRequest{})
	if err != nil || res.GetStatus().GetCode() != 65535 {
		t.Errorf("Search = %v, %v; want status 65535 in body", res.GetStatus(), err)
	}
	s.SetMilvusError(0, "")
	if res, _ := c.Search(ctx, &milvuspb.SearchRequest{}); res.GetStatus().GetCode() != 0 {
		t.Errorf("after clearing: %v", res.GetStatus())
	}
}

func TestCollections(t *testing.T) {
	s := start(t, Options{})
	c := dial(t, s.Addr())
	ctx := ctxT(t)

	d, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "nope"})
	if err != nil || d.GetStatus().GetCode() != 100 {
		t.Errorf("describe missing = %v, %v; want code 100", d.GetStatus(), err)
	}
	if _, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: "c2"}); err != nil {
		t.Fatal(err)
	}
	has, _ := c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "c2"})
	show, _ := c.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{})
	d, _ = c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: "c2"})
	if !has.GetValue() || strings.Join(show.GetCollectionNames(), ",") != "c1,c2" || d.GetCollectionName() != "c2" || d.GetCollectionID() == 0 {
		t.Errorf("has=%v show=%v describe=%v", has.GetValue(), show.GetCollectionNames(), d)
	}
	_, _ = c.DropCollection(ctx, &milvuspb.DropCollectionRequest{CollectionName: "c2"})
	if has, _ := c.HasCollection(ctx, &milvuspb.HasCollectionRequest{CollectionName: "c2"}); has.GetValue() {
		t.Errorf("c2 still there after drop")
	}
}

func TestInsertRecordsSize(t *testing.T) {
	s := start(t, Options{})
	c := dial(t, s.Addr())
	const rows, dim = 1000, 1024 // 4 MB of floats: above gRPC's default limit
	req := &milvuspb.InsertRequest{
		CollectionName: "c1",
		NumRows:        rows,
		FieldsData: []*schemapb.FieldData{{
			Type:      schemapb.DataType_FloatVector,
			FieldName: "v",
			Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
				Dim:  dim,
				Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, rows*dim)}},
			}},
		}},
	}
	res, err := c.Insert(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetInsertCnt() != rows || len(res.GetIDs().GetIntId().GetData()) != rows {
		t.Errorf("insert_cnt = %d, ids = %d, want %d", res.GetInsertCnt(), len(res.GetIDs().GetIntId().GetData()), rows)
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].RequestBytes != proto.Size(req) {
		t.Errorf("recorded %+v, want one call of %d bytes", calls, proto.Size(req))
	}
}

func TestStreams(t *testing.T) {
	s := start(t, Options{Name: "b3"})
	c := dial(t, s.Addr())
	ctx := ctxT(t)

	ds, err := c.DumpMessages(ctx, &milvuspb.DumpMessagesRequest{Pchannel: "p0", StartTimetick: 1, EndTimetick: 5})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		m, err := ds.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.GetMessage().GetId().GetId())
		if m.GetMessage().GetProperties()["backend"] != "b3" {
			t.Errorf("message without backend name: %v", m)
		}
	}
	if strings.Join(ids, ",") != "1,2,3,4,5" {
		t.Errorf("dumped %v, want 1..5", ids)
	}

	rs, err := c.CreateReplicateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, id := range []string{"7", "8", "x"} {
		err := rs.Send(&milvuspb.ReplicateRequest{Request: &milvuspb.ReplicateRequest_ReplicateMessage{
			ReplicateMessage: &milvuspb.ReplicateMessage{Message: &commonpb.ImmutableMessage{Id: &commonpb.MessageID{Id: id}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.GetReplicateConfirmedMessageInfo().GetConfirmedTimeTick())
	}
	if err := rs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
	if len(got) != 3 || got[0] != 7 || got[1] != 8 || got[2] != 3 {
		t.Errorf("confirmed %v, want [7 8 3]", got)
	}
	if s.Count("CreateReplicateStream") != 1 || s.Count("DumpMessages") != 1 {
		t.Errorf("streams not counted")
	}
}

func TestHealthServices(t *testing.T) {
	s := start(t, Options{})
	cc := dialConn(t, s.Addr())
	c := milvuspb.NewMilvusServiceClient(cc)
	h := healthpb.NewHealthClient(cc)
	ctx := ctxT(t)

	ch, err := c.CheckHealth(ctx, &milvuspb.CheckHealthRequest{})
	if err != nil || !ch.GetIsHealthy() {
		t.Fatalf("CheckHealth = %v, %v", ch, err)
	}
	s.SetHealthy(false)
	if ch, _ = c.CheckHealth(ctx, &milvuspb.CheckHealthRequest{}); ch.GetIsHealthy() || len(ch.GetReasons()) == 0 {
		t.Errorf("CheckHealth after SetHealthy(false) = %v", ch)
	}

	for _, svc := range []string{"", "milvus.proto.milvus.MilvusService"} {
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v", svc, r, err)
		}
	}
	// Milvus's quirk is grpc-go's normal behaviour: NOT_SERVING inside an OK response.
	s.SetServing(healthpb.HealthCheckResponse_NOT_SERVING)
	r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Check = %v, %v; want OK with NOT_SERVING", r, err)
	}
}

func TestKillAndRestart(t *testing.T) {
	s := start(t, Options{Name: "k"})
	addr := s.Addr()
	c := dial(t, addr)
	ctx := ctxT(t)
	if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, &milvuspb.SearchRequest{SearchParams: []*commonpb.KeyValuePair{{Key: ParamSleep, Value: "1m"}}})
		errc <- err
	}()
	waitFor(t, func() bool { return s.Inflight() == 1 })
	s.Kill()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("in-flight call after Kill: %v, want Unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call still running after Kill")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("port still accepting after Kill")
	}

	if err := s.Start(addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}, grpc.WaitForReady(true))
		return err == nil
	})
	if s.Count("GetVersion") < 2 {
		t.Errorf("counters lost across restart")
	}
}

func TestGracefulStopLetsCallsFinish(t *testing.T) {
	s := New(Options{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Search(ctxT(t), &milvuspb.SearchRequest{SearchParams: []*commonpb.KeyValuePair{{Key: ParamSleep, Value: "200ms"}}})
		errc <- err
	}()
	waitFor(t, func() bool { return s.Inflight() == 1 })
	s.Stop()
	if err := <-errc; err != nil {
		t.Errorf("in-flight call across graceful Stop: %v", err)
	}
}

func TestRESTAndHealthz(t *testing.T) {
	s := start(t, Options{Name: "r1", REST: true, HealthzAddr: "127.0.0.1:0"})

	resp, err := http.Post("http://"+s.Addr()+"/v2/vectordb/collections/list", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Code int      `json:"code"`
		Data []string `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || out.Code != 0 || strings.Join(out.Data, ",") != "c1" {
		t.Errorf("REST list = %d %+v %v", resp.StatusCode, out, err)
	}
	if resp.Header.Get("X-Fake-Backend") != "r1" {
		t.Errorf("X-Fake-Backend = %q", resp.Header.Get("X-Fake-Backend"))
	}
	if s.Count("POST /v2/vectordb/collections/list") != 1 {
		t.Errorf("REST call not counted")
	}

	// gRPC on the same port.
	if v, err := dial(t, s.Addr()).GetVersion(ctxT(t), &milvuspb.GetVersionRequest{}); err != nil || v.GetVersion() != "r1" {
		t.Errorf("gRPC on REST port = %v, %v", v, err)
	}

	get := func() int {
		resp, err := http.Get("http://" + s.HealthzAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Errorf("healthz = %d, want 200", code)
	}
	s.SetHealthy(false)
	if code := get(); code != 500 {
		t.Errorf("healthz = %d, want 500", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestTLS(t *testing.T) {
	cfg, pool, err := SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Name: "t1", TLS: cfg, REST: true})
	c := dial(t, s.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if v, err := c.GetVersion(ctxT(t), &milvuspb.GetVersionRequest{}); err != nil || v.GetVersion() != "t1" {
		t.Fatalf("GetVersion over TLS = %v, %v", v, err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("https://"+s.Addr()+"/v2/vectordb/collections/list", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Fake-Backend") != "t1" {
		t.Errorf("REST over TLS = %d %v", resp.StatusCode, resp.Header)
	}
}

func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	s := New(Options{REST: true, HealthzAddr: "127.0.0.1:0"})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("passthrough:///"+s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := milvuspb.NewMilvusServiceClient(cc).GetVersion(ctxT(t), &milvuspb.GetVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	// A connection that never speaks must not keep Stop waiting.
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	cc.Close()
	s.Stop()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not met within 5s"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
