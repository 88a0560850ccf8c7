// Package tracing puts each call through milvus-lb into its client's W3C trace and
// exports the balancer's span of it over OTLP/gRPC.
//
// At the start of a call the data path calls Start with the client's traceparent and
// tracestate: the call continues the client's trace when it sends one and starts one
// when it does not, and Start gives the headers to send to Milvus in their place, naming
// the balancer's span as the parent so that Milvus's own spans join the same trace. At
// the end the Tracer, as a call.Observer, exports the span from the call's Record.
//
// Tracing is off unless an endpoint is configured; then the Tracer is nil, Start only
// reads the client's trace id for the access log, and Observe does nothing.
package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span is one call's place in its trace: what the data path copies into call.Record's
// TraceID, SpanID and ParentSpanID.
type Span struct {
	TraceID string // 32 lowercase hex digits; "" when the call has no trace
	// SpanID is the balancer's span of the call (16 hex digits), "" when none is recorded
	// (tracing off, or the client's trace is not sampled).
	SpanID string
	// ParentSpanID is the client's span the call continues, "" when the trace starts here.
	ParentSpanID string
}

// Upstream is the trace context the balancer sends to the endpoint: its traceparent and
// tracestate replace the client's, and an empty one is not sent.
type Upstream struct {
	Traceparent, Tracestate string
}

// Options configure a Tracer.
type Options struct {
	// Endpoint is the OTLP/gRPC collector: "http://host:port" (plaintext),
	// "https://host:port" (TLS, system roots), or "host:port" (plaintext). "" turns
	// tracing off. The OTEL_EXPORTER_OTLP_* environment variables add headers, a CA,
	// compression and timeouts, as in every OpenTelemetry SDK.
	Endpoint string
	// ServiceName is the service.name of the spans (default "milvus-lb";
	// OTEL_SERVICE_NAME overrides it).
	ServiceName string
	Log         *slog.Logger
}

// Tracer records the spans of calls. A nil *Tracer is tracing switched off: every method
// may be called on it. Safe for concurrent use.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// New connects the exporter to o.Endpoint; it returns nil (tracing off) when o.Endpoint
// is "". The connection is made lazily: a collector that is down loses spans (counted by
// the SDK, reported through o.Log), never calls.
func New(ctx context.Context, o Options) (*Tracer, error) {
	if o.Endpoint == "" {
		return nil, nil
	}
	opts, err := endpointOptions(o.Endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint %s: %w", o.Endpoint, err)
	}
	return newTracer(ctx, exp, o)
}

// endpointOptions reads --otlp-endpoint. The exporter itself silently keeps its default
// (localhost:4317) for a URL it cannot parse, so a typo is caught here instead.
func endpointOptions(ep string) ([]otlptracegrpc.Option, error) {
	bad := func(why string) error {
		return fmt.Errorf("--otlp-endpoint %q: %s (want host:port, http://host:port or https://host:port)", ep, why)
	}
	u, err := url.Parse(ep)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		// Not a URL with a scheme ("collector:4317" parses as scheme "collector").
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return nil, bad(err.Error())
		}
		return []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(ep), otlptracegrpc.WithInsecure()}, nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("scheme must be http or https")
	}
	if u.Host == "" {
		return nil, bad("no host")
	}
	return []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(ep)}, nil
}

func newTracer(ctx context.Context, exp sdktrace.SpanExporter, o Options) (*Tracer, error) {
	name := o.ServiceName
	if name == "" {
		name = "milvus-lb"
	}
	// WithFromEnv comes last so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(serviceName(name)), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		// Whether a call is recorded was decided in Start (the client's sampled flag);
		// a span reaching the SDK is always kept.
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(callIDs{}),
	)
	setErrorHandler(o.Log)
	return &Tracer{provider: p, tracer: p.Tracer("github.com/milvus-lb/milvus-lb")}, nil
}

// Shutdown exports the spans still queued, waiting until ctx ends, and stops the
// exporter. Observe after Shutdown does nothing.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Start places a call in its trace, given the client's traceparent and tracestate header
// values ("" when absent; several tracestate lines joined with ","), and returns the
// values to send upstream in their place.
//
// With tracing off it reads the trace id of a valid traceparent (for the access log) and
// passes both headers on unchanged. With tracing on, a valid, sampled traceparent is
// continued by a new span of the balancer; a missing or invalid one starts a new trace
// (and the tracestate, meaningless without it, is dropped, as §3.3 says); an unsampled
// one records nothing and is passed on. A tracestate that does not parse is dropped.
func (t *Tracer) Start(traceparent, tracestate string) (Span, Upstream) {
	p, ok := parseTraceparent(traceparent)
	if t == nil {
		return Span{TraceID: p.traceID}, Upstream{traceparent, tracestate}
	}
	if !ok {
		tp := newTraceparent()
		return Span{TraceID: tp[3:35], SpanID: tp[36:52]}, Upstream{Traceparent: tp}
	}
	if tracestate != "" && !validTracestate(tracestate) {
		tracestate = ""
	}
	if p.flags&flagSampled == 0 {
		return Span{TraceID: p.traceID}, Upstream{traceparent, tracestate}
	}
	tp := formatTraceparent(p.traceID, newSpanID(), flagSampled|p.flags&flagRandom)
	return Span{TraceID: tp[3:35], SpanID: tp[36:52], ParentSpanID: p.spanID}, Upstream{tp, tracestate}
}

// newTraceparent starts a trace: random trace and span ids, sampled. The runtime's
// generator is per thread and takes no lock; ids must be unique, not secret.
func newTraceparent() string {
	var b [traceparentLen]byte
	var id [16]byte
	for id == [16]byte{} {
		putUint64(id[:8], rand.Uint64())
		putUint64(id[8:], rand.Uint64())
	}
	hex.Encode(b[3:35], id[:])
	return finishTraceparent(&b, newSpanID(), flagSampled|flagRandom)
}

func newSpanID() [8]byte {
	var id [8]byte
	for id == [8]byte{} {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// StartTrace is Start in the form the per-call decision takes (call.Port.Trace).
func (t *Tracer) StartTrace(client call.TraceContext) (call.TraceIDs, call.TraceContext) {
	sp, up := t.Start(client.Traceparent, client.Tracestate)
	return call.TraceIDs{TraceID: sp.TraceID, SpanID: sp.SpanID, ParentSpanID: sp.ParentSpanID},
		call.TraceContext{Traceparent: up.Traceparent, Tracestate: up.Tracestate}
}
