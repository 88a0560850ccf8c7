package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestTraceFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	parse := func(args ...string) traceOptions {
		var o traceOptions
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addTraceFlags(f, &o)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		return o
	}

	// Off by default: no tracer, and stopping it does nothing.
	tr, stop, err := startTracing(context.Background(), parse(), log)
	if tr != nil || err != nil {
		t.Fatalf("no --otlp-endpoint: tracer %v, error %v; want tracing off", tr, err)
	}
	stop()

	tr, stop, err = startTracing(context.Background(), parse("--otlp-endpoint=127.0.0.1:4317"), log)
	if tr == nil || err != nil {
		t.Fatalf("--otlp-endpoint=127.0.0.1:4317: tracer %v, error %v", tr, err)
	}
	stop()

	_, _, err = startTracing(context.Background(), parse("--otlp-endpoint=collector"), log)
	if err == nil || !strings.Contains(err.Error(), `--otlp-endpoint "collector"`) {
		t.Errorf("--otlp-endpoint=collector: error %v, want one naming the flag and its value", err)
	}
}
