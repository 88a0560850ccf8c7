package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

func newTestTracer(t *testing.T) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := newTracer(context.Background(), exp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, exp
}

// With tracing off, headers pass untouched and only the client's trace id is read.
func TestStartOff(t *testing.T) {
	var tr *Tracer
	span, up := tr.Start(clientTP, "rojo=1")
	if span != (Span{TraceID: clientTrace}) || up != (Upstream{clientTP, "rojo=1"}) {
		t.Errorf("off, valid traceparent: %+v %+v; want the trace id only and the headers unchanged", span, up)
	}
	span, up = tr.Start("garbage", "rojo=1")
	if span != (Span{}) || up != (Upstream{"garbage", "rojo=1"}) {
		t.Errorf("off, invalid traceparent: %+v %+v; want nothing and the headers unchanged", span, up)
	}
	tr.Observe(&call.Record{SpanID: clientSpan}) // does nothing, and does not panic
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestStartOn(t *testing.T) {
	tr, _ := newTestTracer(t)

	// A sampled client trace is continued: same trace, the balancer's span as parent.
	span, up := tr.Start(clientTP, "rojo=1,congo=2")
	p, ok := parseTraceparent(up.Traceparent)
	switch {
	case !ok || p.traceID != clientTrace || p.spanID == clientSpan || p.flags != flagSampled:
		t.Errorf("continued: upstream traceparent %q, want trace %s with a new span, sampled", up.Traceparent, clientTrace)
	case span != (Span{TraceID: clientTrace, SpanID: p.spanID, ParentSpanID: clientSpan}):
		t.Errorf("continued: span %+v, want trace %s, span %s, parent %s", span, clientTrace, p.spanID, clientSpan)
	case up.Tracestate != "rojo=1,congo=2":
		t.Errorf("continued: tracestate %q, want it passed on", up.Tracestate)
	}

	// No traceparent, or one that does not parse: a new trace, and no tracestate.
	for _, in := range []string{"", "00-" + strings.ToUpper(clientTrace) + "-" + clientSpan + "-01"} {
		span, up := tr.Start(in, "rojo=1")
		p, ok := parseTraceparent(up.Traceparent)
		if !ok || p.traceID == clientTrace || span != (Span{TraceID: p.traceID, SpanID: p.spanID}) || up.Tracestate != "" {
			t.Errorf("traceparent %q: span %+v, upstream %+v; want a new trace of the balancer's span, no tracestate", in, span, up)
		}
	}
	a, _ := tr.Start("", "")
	b, _ := tr.Start("", "")
	if a.TraceID == b.TraceID || a.SpanID == b.SpanID {
		t.Errorf("two new traces share ids: %+v %+v", a, b)
	}

	// An unsampled client trace: nothing recorded, passed on as it came.
	unsampled := "00-" + clientTrace + "-" + clientSpan + "-00"
	span, up = tr.Start(unsampled, "rojo=1")
	if span != (Span{TraceID: clientTrace}) || up != (Upstream{unsampled, "rojo=1"}) {
		t.Errorf("unsampled: %+v %+v; want no span and the headers unchanged", span, up)
	}

	// A tracestate that does not parse is dropped.
	if _, up := tr.Start(clientTP, "Rojo=1"); up.Tracestate != "" {
		t.Errorf("invalid tracestate passed on as %q", up.Tracestate)
	}
}

// The exported span carries the ids Start chose, the call's times, and the semantic
// convention attributes.
func TestObserveExportsSpan(t *testing.T) {
	tr, exp := newTestTracer(t)
	span, _ := tr.Start(clientTP, "")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tr.Observe(&call.Record{
		Start: start, Duration: 1500 * time.Microsecond, GRPC: true, Method: "Search",
		DB: "default", Collection: "books", Endpoint: "10.0.0.7:19530", Code: codes.OK,
		MilvusCode: 8, MilvusReason: "rate limit exceeded",
		TraceID: span.TraceID, SpanID: span.SpanID, ParentSpanID: span.ParentSpanID,
	})
	tr.Observe(&call.Record{Start: start, GRPC: true, Method: "Query"}) // not sampled: no SpanID
	if err := tr.provider.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != clientTrace || s.SpanContext.SpanID().String() != span.SpanID ||
		s.Parent.SpanID().String() != clientSpan || !s.Parent.IsRemote() {
		t.Errorf("ids: trace %s span %s parent %s, want %s %s %s", s.SpanContext.TraceID(), s.SpanContext.SpanID(),
			s.Parent.SpanID(), clientTrace, span.SpanID, clientSpan)
	}
	if s.Name != "milvus.proto.milvus.MilvusService/Search" || s.SpanKind != trace.SpanKindClient {
		t.Errorf("name %q kind %v", s.Name, s.SpanKind)
	}
	if !s.StartTime.Equal(start) || s.EndTime.Sub(s.StartTime) != 1500*time.Microsecond {
		t.Errorf("times %v..%v, want %v for 1.5ms", s.StartTime, s.EndTime, start)
	}
	want := map[attribute.Key]attribute.Value{
		"rpc.system": attribute.StringValue("grpc"), "rpc.service": attribute.StringValue("milvus.proto.milvus.MilvusService"),
		"rpc.method": attribute.StringValue("Search"), "rpc.grpc.status_code": attribute.IntValue(0),
		"db.system": attribute.StringValue("milvus"), "db.namespace": attribute.StringValue("default"),
		"db.collection.name": attribute.StringValue("books"), "db.response.status_code": attribute.StringValue("8"),
		"server.address": attribute.StringValue("10.0.0.7"), "server.port": attribute.IntValue(19530),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		got[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if s.Status.Code != otelcodes.Error || s.Status.Description != "rate limit exceeded" {
		t.Errorf("status %+v, want Error with Milvus's reason", s.Status)
	}
	if v, _ := s.Resource.Set().Value("service.name"); v.AsString() != "milvus-lb" {
		t.Errorf("service.name = %q", v.AsString())
	}
}

func TestEndpointOptions(t *testing.T) {
	for _, ep := range []string{"collector:4317", "127.0.0.1:4317", "[::1]:4317", "http://collector:4317", "https://collector.example:4317"} {
		if _, err := endpointOptions(ep); err != nil {
			t.Errorf("endpointOptions(%q): %v", ep, err)
		}
	}
	for _, ep := range []string{"collector", "ftp://collector:4317", "http://", "collector:4317:1"} {
		if _, err := endpointOptions(ep); err == nil || !strings.Contains(err.Error(), ep) {
			t.Errorf("endpointOptions(%q) = %v, want an error naming it", ep, err)
		}
	}
	if tr, err := New(context.Background(), Options{}); tr != nil || err != nil {
		t.Errorf("New with no endpoint = %v, %v; want nil (off)", tr, err)
	}
}
