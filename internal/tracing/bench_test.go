package tracing

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// discard is an exporter that drops every batch, so the benchmarks measure what a call
// pays (Start on the data path, Observe at its end), not the network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func benchCall(b *testing.B, tr *Tracer, traceparent string) {
	rec := call.Record{Start: time.Now(), Duration: time.Millisecond, GRPC: true, Method: "Search",
		DB: "default", Collection: "books", Endpoint: "10.0.0.7:19530"}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.CPUTime()
	for b.Loop() {
		span, _ := tr.Start(traceparent, "")
		rec.TraceID, rec.SpanID, rec.ParentSpanID = span.TraceID, span.SpanID, span.ParentSpanID
		tr.Observe(&rec)
	}
	// The process's CPU time, the batch processor's goroutine and the GC included, and
	// less sensitive than ns/op to other work sharing the machine.
	b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkCallOff is what every call pays with tracing off (the default): reading the
// client's trace id for the access log, nothing else.
func BenchmarkCallOff(b *testing.B) {
	b.Run("no-traceparent", func(b *testing.B) { benchCall(b, nil, "") })
	b.Run("traceparent", func(b *testing.B) { benchCall(b, nil, clientTP) })
}

// BenchmarkCallOn is a traced call: Start, then the span built and queued in Observe.
func BenchmarkCallOn(b *testing.B) {
	tr, err := newTracer(context.Background(), discard{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	b.Run("new-trace", func(b *testing.B) { benchCall(b, tr, "") })
	b.Run("continued", func(b *testing.B) { benchCall(b, tr, clientTP) })
	b.Run("start-only", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			tr.Start(clientTP, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
		}
		b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
}
