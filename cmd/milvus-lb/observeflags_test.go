package main

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/admin"
	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

func parseObserveFlags(t *testing.T, args ...string) observeOptions {
	t.Helper()
	var o observeOptions
	f := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addObserveFlags(f, &o)
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestObserveFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want observeOptions
	}{
		{nil, observeOptions{AccessLog: "stdout", AccessLogFormat: "json"}},
		{[]string{"--metrics-collection-labels"}, observeOptions{AccessLog: "stdout", AccessLogFormat: "json", CollectionLabels: 100}},
		{[]string{"--metrics-collection-labels=7", "--access-log=off", "--access-log-format=text"}, observeOptions{AccessLog: "off", AccessLogFormat: "text", CollectionLabels: 7}},
	} {
		if got := parseObserveFlags(t, c.args...); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.args, got, c.want)
		}
	}
}

func TestObserveStartErrors(t *testing.T) {
	reg := balancer.NewRegistry()
	gw := gateway.New(reg, nil, nil, nil)
	bad := filepath.Join(t.TempDir(), "missing", "access.log")
	for _, c := range []struct {
		o    observeOptions
		want string
	}{
		{observeOptions{AccessLog: bad, AccessLogFormat: "json"}, bad},
		{observeOptions{AccessLog: "off", AccessLogFormat: "xml"}, "--access-log-format"},
		{observeOptions{AccessLog: "off", AccessLogFormat: "json", CollectionLabels: -1}, "--metrics-collection-labels"},
	} {
		if _, err := c.o.start(gw, reg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.o, err, c.want)
		}
	}
}

// TestObserversRecordEveryCall: one call reaches both the access log and the metrics.
func TestObserversRecordEveryCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	o := parseObserveFlags(t, "--access-log="+path, "--access-log-format=text", "--metrics-collection-labels")
	reg := balancer.NewRegistry()
	gw := gateway.New(reg, nil, nil, nil)
	obs, err := o.start(gw, reg)
	if err != nil {
		t.Fatal(err)
	}
	var _ call.Observer = obs
	obs.Observe(&call.Record{GRPC: true, Method: "Search", Backend: "ns/svc:19530", Endpoint: "10.0.0.1:19530",
		Attempts: 1, Code: codes.OK, DB: "default", Collection: "books", User: "root"})
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "method=Search db=default collection=books") {
		t.Errorf("access log: %q", b)
	}
	rec := httptest.NewRecorder()
	(&admin.Server{Gateway: gw, Metrics: obs.Metrics}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`milvus_lb_requests_total{backend="ns/svc:19530",code="OK",collection="books",db="default",method="Search",milvus_code="Success"} 1`,
		`milvus_lb_access_log_dropped_total{reason="queue_full"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
