package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/milvus-lb/milvus-lb/internal/tracing"
)

// traceOptions are the tracing flags of serve and controller.
type traceOptions struct {
	OTLPEndpoint string
}

// addTraceFlags declares the tracing flags (README: Tracing).
func addTraceFlags(f *pflag.FlagSet, o *traceOptions) {
	f.StringVar(&o.OTLPEndpoint, "otlp-endpoint", "",
		"export a span of every call over OTLP/gRPC to this collector: host:port or http://host:port (plaintext), https://host:port (TLS); off when empty")
}

// startTracing returns the tracer of --otlp-endpoint (nil, tracing off, when it is empty)
// and a stop that sends the spans still queued, waiting at most a few seconds, at exit.
// An endpoint that does not parse is an error at start.
func startTracing(ctx context.Context, o traceOptions, log *slog.Logger) (*tracing.Tracer, func(), error) {
	t, err := tracing.New(ctx, tracing.Options{Endpoint: o.OTLPEndpoint, Log: log})
	if err != nil {
		return nil, nil, err
	}
	if t != nil {
		log.Info("tracing: exporting spans over OTLP/gRPC", "endpoint", o.OTLPEndpoint)
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			log.Warn("tracing: spans not sent at exit", "error", err)
		}
	}
	return t, stop, nil
}
