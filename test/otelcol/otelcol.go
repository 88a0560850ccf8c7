// Package otelcol runs a real OpenTelemetry Collector for tests: an OTLP/gRPC receiver on
// 127.0.0.1 and the file exporter, whose file the test reads back as spans. The collector
// is the one scripts/tools.sh builds into the cache (tools/otelcol); a test that finds it
// missing fails, telling the user to run that script.
//
//	col := otelcol.Start(t)
//	// ... run milvus-lb with --otlp-endpoint=col.Endpoint and make calls ...
//	spans := col.WaitSpans(t, 30*time.Second, func(s []otelcol.Span) bool { return len(s) >= 2 })
package otelcol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// Collector is a running collector, stopped when the test ends.
type Collector struct {
	// Endpoint is the OTLP/gRPC receiver, host:port, plaintext.
	Endpoint string
	file     string
	proc     *testenv.Process
}

// Span is one span as the collector wrote it, with its service's name.
type Span struct {
	Service      string // the resource's service.name
	TraceID      string // hex
	SpanID       string // hex
	ParentSpanID string // hex, "" for a root span
	Name         string
	Kind         int // OTLP SpanKind: 1 internal, 2 server, 3 client
	Start, End   time.Time
	Attributes   map[string]any // string, int64, float64 or bool
	StatusCode   int            // 0 unset, 1 ok, 2 error
	StatusMsg    string
}

// Start starts a collector and waits until its receiver accepts connections.
func Start(t testing.TB) *Collector {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	c := &Collector{Endpoint: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), file: filepath.Join(dir, "spans.json")}
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  file:
    path: %s
    flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`, c.Endpoint, c.file)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.proc = testenv.StartProcess(t, "otelcol", exec.Command(bin, "--config", cfgPath), syscall.SIGTERM, 10*time.Second, true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.Endpoint, time.Second)
		if err == nil {
			conn.Close()
			return c
		}
		select {
		case <-c.proc.Exited():
			t.Fatalf("otelcol exited before listening on %s:\n%s", c.Endpoint, c.proc.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("otelcol did not listen on %s within 30s:\n%s", c.Endpoint, c.proc.Logs())
		}
	}
}

// binary is the collector scripts/tools.sh built, found by asking the script where it
// keeps the tools (so the cache key is computed in one place).
func binary(t testing.TB) string {
	t.Helper()
	root := testenv.Root(t)
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "tools.sh"), "--dir")
	cmd.Env = append(os.Environ(), "MILVUS_LB_CACHE="+testenv.CacheDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/tools.sh --dir: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	bin := filepath.Join(dir, "otelcol")
	if _, err := os.Stat(filepath.Join(dir, ".ok")); err != nil {
		t.Fatalf("the OpenTelemetry Collector is not built (no %s): run scripts/tools.sh", dir)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("otelcol is missing from %s: run scripts/tools.sh", dir)
	}
	return bin
}

// Spans returns every span the collector has written so far.
func (c *Collector) Spans(t testing.TB) []Span {
	t.Helper()
	b, err := os.ReadFile(c.file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	spans, err := parse(b)
	if err != nil {
		t.Fatalf("otelcol's file %s: %v", c.file, err)
	}
	return spans
}

// WaitSpans polls the file until done accepts the spans written so far, and returns them;
// the test fails if that does not happen within timeout.
func (c *Collector) WaitSpans(t testing.TB, timeout time.Duration, done func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := c.Spans(t)
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("otelcol: the spans written within %v are not what the test waits for: %+v", timeout, spans)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The file exporter writes one OTLP/JSON ExportTraceServiceRequest per line
// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding: ids in hex, 64-bit
// integers as strings).
type otlpFile struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpKV `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []otlpSpan `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpSpan struct {
	TraceID      string   `json:"traceId"`
	SpanID       string   `json:"spanId"`
	ParentSpanID string   `json:"parentSpanId"`
	Name         string   `json:"name"`
	Kind         int      `json:"kind"`
	Start        string   `json:"startTimeUnixNano"`
	End          string   `json:"endTimeUnixNano"`
	Attributes   []otlpKV `json:"attributes"`
	Status       struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
}

type otlpKV struct {
	Key   string `json:"key"`
	Value struct {
		String *string  `json:"stringValue"`
		Int    *string  `json:"intValue"`
		Double *float64 `json:"doubleValue"`
		Bool   *bool    `json:"boolValue"`
	} `json:"value"`
}

func parse(b []byte) ([]Span, error) {
	var out []Span
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f otlpFile
		if err := json.Unmarshal(line, &f); err != nil {
			if i == len(lines)-1 {
				break // the exporter is writing this line now
			}
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		for _, rs := range f.ResourceSpans {
			service, _ := attributes(rs.Resource.Attributes)["service.name"].(string)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{Service: service, TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID,
						Name: s.Name, Kind: s.Kind, Start: unixNano(s.Start), End: unixNano(s.End),
						Attributes: attributes(s.Attributes), StatusCode: s.Status.Code, StatusMsg: s.Status.Message})
				}
			}
		}
	}
	return out, nil
}

func attributes(kvs []otlpKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.Value
		switch {
		case v.String != nil:
			m[kv.Key] = *v.String
		case v.Int != nil:
			n, _ := strconv.ParseInt(*v.Int, 10, 64)
			m[kv.Key] = n
		case v.Double != nil:
			m[kv.Key] = *v.Double
		case v.Bool != nil:
			m[kv.Key] = *v.Bool
		}
	}
	return m
}

func unixNano(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Unix(0, n)
}
