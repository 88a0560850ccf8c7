package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// observeOptions are the flags of what is recorded of each call (docs/observability.md).
type observeOptions struct {
	AccessLog        string
	AccessLogFormat  string
	CollectionLabels int
}

// addObserveFlags declares the access log and metric label flags.
func addObserveFlags(f *pflag.FlagSet, o *observeOptions) {
	f.StringVar(&o.AccessLog, "access-log", "stdout",
		"where the access log (one line per call) goes: stdout, stderr, a file path (appended to), or off")
	f.StringVar(&o.AccessLogFormat, "access-log-format", "json", "access log lines: json or text")
	f.IntVar(&o.CollectionLabels, "metrics-collection-labels", 0,
		"add db and collection labels to the request metrics, keeping at most this many distinct values of each (the rest are counted as _other); 0 = off, the flag alone = 100")
	f.Lookup("metrics-collection-labels").NoOptDefVal = "100"
}

// observers is what records every call: the metrics and the access log. It is the data
// plane's call.Observer.
type observers struct {
	Metrics *admin.Metrics
	Log     *accesslog.Logger // nil when the access log is off
}

// start opens the access log and defines the metrics. Close the result to flush the log.
func (o observeOptions) start(gw *gateway.Gateway, reg *balancer.Registry) (*observers, error) {
	format, err := accesslog.ParseFormat(o.AccessLogFormat)
	if err != nil {
		return nil, fmt.Errorf("--access-log-format: %w", err)
	}
	if o.CollectionLabels < 0 {
		return nil, errors.New("--metrics-collection-labels: want a number of values, 0 for off")
	}
	log, err := accesslog.Open(o.AccessLog, format)
	if err != nil {
		return nil, fmt.Errorf("--access-log: %w", err)
	}
	m := admin.NewMetrics(gw, reg, admin.WithCollectionLabels(o.CollectionLabels))
	m.Registry.MustRegister(admin.AccessLogCollector(log.Stats))
	return &observers{Metrics: m, Log: log}, nil
}

// Observe implements call.Observer.
func (s *observers) Observe(r *call.Record) {
	s.Metrics.Observe(r)
	s.Log.Observe(r)
}

// RecordFields implements call.FieldsObserver.
func (s *observers) RecordFields() milvus.Fields {
	return call.RecordFields(s.Metrics) | call.RecordFields(s.Log)
}

// Close writes what the access log holds and closes it.
func (s *observers) Close() error { return s.Log.Close() }
