package tracing

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// rpcService is rpc.service of every Milvus call; Record.Method names the method in it.
var rpcService = strings.Trim(milvus.ServicePrefix, "/")

// RecordFields implements call.FieldsObserver: a span names the database and collection.
func (t *Tracer) RecordFields() milvus.Fields {
	if t == nil {
		return 0
	}
	return milvus.FieldNames
}

// Observe exports the balancer's span of a finished call (call.Observer). It builds the
// whole span at the end, from the Record, with the ids Start chose: nothing of the span
// is held while the call runs. The SDK's batch processor queues it without blocking (a
// full queue drops it) and exports it from its own goroutine.
func (t *Tracer) Observe(r *call.Record) {
	if t == nil || r.SpanID == "" {
		return
	}
	var ids fixedIDs
	var err error
	if ids.trace, err = trace.TraceIDFromHex(r.TraceID); err != nil {
		return
	}
	if ids.span, err = trace.SpanIDFromHex(r.SpanID); err != nil {
		return
	}
	ctx := context.WithValue(context.Background(), idsKey{}, ids)
	if r.ParentSpanID != "" {
		psid, err := trace.SpanIDFromHex(r.ParentSpanID)
		if err != nil {
			return
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: ids.trace, SpanID: psid, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	// The span describes the call as the balancer made it to Milvus: a client span, the
	// endpoint as server.address, as the RPC and database semantic conventions have it.
	_, span := t.tracer.Start(ctx, spanName(r), trace.WithTimestamp(r.Start),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attributes(r)...))
	if code, desc := status(r); code != codes.Unset {
		span.SetStatus(code, desc)
	}
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

func spanName(r *call.Record) string {
	if r.GRPC && r.Method != "grpc" {
		return milvus.ServicePrefix[1:] + r.Method
	}
	return r.Method
}

// attributes are the OpenTelemetry semantic-convention attributes of a call: RPC
// (rpc.*), database (db.*), and the endpoint (server.*). Only names and codes: nothing of
// a request's or reply's content.
func attributes(r *call.Record) []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 11)
	if r.GRPC {
		a = append(a, attribute.String("rpc.system", "grpc"), attribute.Int("rpc.grpc.status_code", int(r.Code)))
		if r.Method != "grpc" {
			a = append(a, attribute.String("rpc.service", rpcService), attribute.String("rpc.method", r.Method))
		}
	} else {
		a = append(a, attribute.String("url.path", r.Method))
		if r.Status != 0 {
			a = append(a, attribute.Int("http.response.status_code", r.Status))
		}
	}
	a = append(a, attribute.String("db.system", "milvus"))
	if r.DB != "" {
		a = append(a, attribute.String("db.namespace", r.DB))
	}
	if r.Collection != "" {
		a = append(a, attribute.String("db.collection.name", r.Collection))
	}
	if code := r.MilvusStatus(); code != 0 {
		a = append(a, attribute.String("db.response.status_code", strconv.Itoa(int(code))))
	}
	if host, port, err := net.SplitHostPort(r.Endpoint); err == nil {
		a = append(a, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			a = append(a, attribute.Int("server.port", p))
		}
	}
	return a
}

// status marks a failed call (call.Record.Failed; an HTTP status of 400 or more is also
// the conventions' rule for client spans) with what says most about why.
func status(r *call.Record) (codes.Code, string) {
	switch {
	case !r.Failed():
		return codes.Unset, ""
	case r.GRPC && r.Code != 0:
		return codes.Error, r.Code.String()
	case !r.GRPC && r.Status >= 400:
		return codes.Error, strconv.Itoa(r.Status)
	}
	return codes.Error, r.MilvusReason
}

// idsKey carries to callIDs the ids Start chose for a call's span.
type idsKey struct{}

type fixedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// callIDs makes the SDK give a span the ids already sent upstream in traceparent, which
// Milvus's spans name as their parent.
type callIDs struct{}

func (callIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(idsKey{}).(fixedIDs)
	return ids.trace, ids.span
}

func (callIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(idsKey{}).(fixedIDs)
	return ids.span
}

func serviceName(name string) attribute.KeyValue { return attribute.String("service.name", name) }

var handlerOnce sync.Once

// setErrorHandler sends the SDK's errors (a failed export, spans dropped from a full
// queue) to the log instead of the standard logger. The handler is process-wide; the
// first Tracer's log wins.
func setErrorHandler(log *slog.Logger) {
	if log == nil {
		return
	}
	handlerOnce.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "error", err) }))
	})
}

var _ call.Observer = (*Tracer)(nil)
