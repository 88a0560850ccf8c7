package otelcol_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/dataplane"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
	"github.com/milvus-lb/milvus-lb/internal/tracing"
	"github.com/milvus-lb/milvus-lb/test/otelcol"
)

// Spans the tracing package exports reach a real collector over OTLP/gRPC with the ids
// the balancer sent upstream and the semantic-convention attributes: one call continuing
// a client's trace, one starting its own.
func TestTracingExportsToCollector(t *testing.T) {
	col := otelcol.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: "http://" + col.Endpoint})
	if err != nil {
		t.Fatal(err)
	}

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	continued, up := tr.Start("00-"+clientTrace+"-"+clientSpan+"-01", "")
	if up.Traceparent != "00-"+clientTrace+"-"+continued.SpanID+"-01" {
		t.Fatalf("upstream traceparent %q does not name the balancer's span %s", up.Traceparent, continued.SpanID)
	}
	started, _ := tr.Start("", "")
	start := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	tr.Observe(&call.Record{Start: start, Duration: 3 * time.Millisecond, GRPC: true, Method: "Search",
		DB: "default", Collection: "books", Endpoint: "127.0.0.1:19530", Code: codes.OK,
		TraceID: continued.TraceID, SpanID: continued.SpanID, ParentSpanID: continued.ParentSpanID})
	tr.Observe(&call.Record{Start: start, Duration: time.Millisecond, GRPC: true, Method: "Insert",
		DB: "analytics", Collection: "events", Endpoint: "127.0.0.2:19531", Code: codes.Unavailable,
		TraceID: started.TraceID, SpanID: started.SpanID})
	// Shutdown sends what is queued.
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("flushing spans to the collector: %v", err)
	}

	spans := col.WaitSpans(t, 30*time.Second, func(s []otelcol.Span) bool { return len(s) >= 2 })
	if len(spans) != 2 {
		t.Fatalf("collector wrote %d spans, want 2: %+v", len(spans), spans)
	}
	byID := map[string]otelcol.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	s, ok := byID[continued.SpanID]
	switch {
	case !ok:
		t.Errorf("no span %s (the continued call) among %+v", continued.SpanID, spans)
	case s.TraceID != clientTrace || s.ParentSpanID != clientSpan:
		t.Errorf("continued call: trace %s parent %s, want the client's %s %s", s.TraceID, s.ParentSpanID, clientTrace, clientSpan)
	default:
		want := map[string]any{"rpc.system": "grpc", "rpc.service": "milvus.proto.milvus.MilvusService", "rpc.method": "Search",
			"rpc.grpc.status_code": int64(0), "db.system": "milvus", "db.namespace": "default", "db.collection.name": "books",
			"server.address": "127.0.0.1", "server.port": int64(19530)}
		for k, v := range want {
			if s.Attributes[k] != v {
				t.Errorf("continued call: attribute %s = %v, want %v", k, s.Attributes[k], v)
			}
		}
		if s.Service != "milvus-lb" || s.Name != "milvus.proto.milvus.MilvusService/Search" || s.Kind != 3 {
			t.Errorf("continued call: service %q name %q kind %d", s.Service, s.Name, s.Kind)
		}
		if !s.Start.Equal(start) || s.End.Sub(s.Start) != 3*time.Millisecond {
			t.Errorf("continued call: %v..%v, want from %v for 3ms", s.Start, s.End, start)
		}
	}
	s, ok = byID[started.SpanID]
	switch {
	case !ok:
		t.Errorf("no span %s (the call that started a trace) among %+v", started.SpanID, spans)
	case s.TraceID != started.TraceID || s.ParentSpanID != "":
		t.Errorf("started trace: trace %s parent %q, want %s and no parent", s.TraceID, s.ParentSpanID, started.TraceID)
	case s.Attributes["db.namespace"] != "analytics" || s.Attributes["rpc.grpc.status_code"] != int64(codes.Unavailable) || s.StatusCode != 2:
		t.Errorf("started trace: attributes %v status %d, want db analytics, code 14, error", s.Attributes, s.StatusCode)
	}
}

// A call through the balancer, tracing on: the backend (standing in for Milvus, which
// reads traceparent) gets a traceparent in the client's trace whose parent is the span the
// balancer exported, which is itself the child of the client's span. So Milvus's own
// spans hang under the balancer's in one tree.
func TestTraceReachesBackend(t *testing.T) {
	col := otelcol.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: col.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	backends := lbtest.Backends(t, 1, fakemilvus.Options{})
	lb := lbtest.Start(t, lbtest.Options{Plane: dataplane.Options{Trace: tr.StartTrace}, Observer: tr}, lbtest.Addrs(backends)...)
	client, _ := lb.Dial(t, true)

	const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	md := metadata.Pairs("traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "tracestate", "congo=t61rcWkgMzE")
	if _, err := client.Search(metadata.NewOutgoingContext(ctx, md), &milvuspb.SearchRequest{DbName: "analytics", CollectionName: "books"}); err != nil {
		t.Fatal(err)
	}
	calls := backends[0].Calls()
	if len(calls) != 1 {
		t.Fatalf("the backend got %d calls, want 1", len(calls))
	}
	up := calls[0].MD.Get("traceparent")
	if len(up) != 1 || !strings.HasPrefix(up[0], "00-"+clientTrace+"-") || strings.Contains(up[0], clientSpan) {
		t.Fatalf("the backend got traceparent %q, want the client's trace with the balancer's span", up)
	}
	if ts := calls[0].MD.Get("tracestate"); len(ts) != 1 || ts[0] != "congo=t61rcWkgMzE" {
		t.Errorf("the backend got tracestate %q, want the client's", ts)
	}
	lbSpan := strings.Split(up[0], "-")[2]
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := col.WaitSpans(t, 30*time.Second, func(s []otelcol.Span) bool { return len(s) >= 1 })
	if s := spans[0]; len(spans) != 1 || s.SpanID != lbSpan || s.TraceID != clientTrace || s.ParentSpanID != clientSpan ||
		s.Attributes["db.namespace"] != "analytics" || s.Attributes["rpc.method"] != "Search" {
		t.Errorf("the collector got %+v; want one Search span %s in trace %s under the client's span %s", spans, lbSpan, clientTrace, clientSpan)
	}
}
