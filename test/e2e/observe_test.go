package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
	"github.com/milvus-lb/milvus-lb/test/otelcol"
)

// observed is the guide's balancer as an operator who watches it runs it: access log to a
// file, its own log at debug level, db and collection labels on the metrics, spans to a
// real OpenTelemetry Collector; and pymilvus calls through it that carry a marker string
// in every place a client can put one (test/clients/observe_calls.py).
type observed struct {
	g         *guide
	col       *otelcol.Collector
	accessLog string
	marker    string
	traceID   string // the pymilvus application's trace
}

const observedCollection = "observed_books"

func observe(t *testing.T) *observed {
	t.Helper()
	o := &observed{col: otelcol.Start(t), marker: newMarker(t)}
	o.g = prepareGuide(t, testenv.FreePort(t))
	o.accessLog = filepath.Join(o.g.dir, "access.log")
	o.g.serve(t, "--log-level", "debug", "--access-log", o.accessLog, "--metrics-collection-labels",
		"--otlp-endpoint", o.col.Endpoint)
	out := testenv.RunClient(t, clientTimeout, "observe_calls: PASS", testenv.Python(t),
		filepath.Join(testenv.Root(t), "test", "clients", "observe_calls.py"),
		"--host", o.g.address, "--port", strconv.Itoa(o.g.port), "--server-name", host, "--ca", o.g.ca,
		"--marker", o.marker, "--otel", testenv.PythonOTel(t), "--otlp", o.col.Endpoint)
	for line := range strings.Lines(out) {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "observe_calls: trace_id "); ok {
			o.traceID = id
		}
	}
	if len(o.traceID) != 32 {
		t.Fatalf("observe_calls.py printed no trace id:\n%s", out)
	}
	o.restCalls(t)
	return o
}

// newMarker is 32 ASCII characters (observe_calls.py makes a vector of their bytes) that
// appear nowhere by chance, and can be a Milvus field name.
func newMarker(t *testing.T) string {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "mk" + hex.EncodeToString(b)
}

// restCalls makes Milvus REST v2 calls with the marker in the credentials, another header,
// the filter and the output fields. milvus-lite serves no REST API: the calls fail at the
// backend, and are logged all the same. It may reset a connection before the body went
// (checkAccessLog): both of two calls did once in CI, so there are six.
func (o *observed) restCalls(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: o.g.tlsConfig(t)}}
	body := fmt.Sprintf(`{"collectionName":%q,"filter":"note == \"%s\"","outputFields":["note","k%s"]}`,
		observedCollection, o.marker, o.marker)
	for range 6 {
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("https://%s:%d/v2/vectordb/entities/query", o.g.address, o.g.port), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer observer:pw"+o.marker)
		req.Header.Set("X-App-Tag", o.marker)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("REST query through milvus-lb: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("REST query through milvus-lb: %s", resp.Status)
	}
}

// accessLines waits until the access log holds a line for which done is true, and returns
// every line, decoded.
func (o *observed) accessLines(t *testing.T, done func(line map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(o.accessLog)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var lines []map[string]any
		found := false
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("access log line is not JSON: %v\n%s", err, sc.Text())
			}
			lines = append(lines, m)
			found = found || done(m)
		}
		if found {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("the access log has no line the test waits for after 30 s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// admin fetches a path of the admin server.
func (o *observed) admin(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + o.g.lb.AdminAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return string(b)
}

// TestObserveThroughMilvusLB checks what an operator sees of pymilvus calls through the
// balancer: an access log line per call naming the user, database, collection and method
// (and REST calls too); the pymilvus application's trace continued by milvus-lb's spans in
// a real collector; and not one trace of the marker (nor of the credentials it is part
// of) in any of it.
func TestObserveThroughMilvusLB(t *testing.T) {
	o := observe(t)
	isREST := func(l map[string]any) bool { return l["method"] == "/v2/vectordb/entities/query" }
	lines := o.accessLines(t, isREST)

	t.Run("access log names the calls", func(t *testing.T) { o.checkAccessLog(t, lines) })
	t.Run("spans continue the client's trace", func(t *testing.T) { o.checkSpans(t) })
	t.Run("no marker anywhere", func(t *testing.T) {
		// What the operator can read: the access log, milvus-lb's own output (its log at
		// debug level), everything the admin address serves, and the exported spans.
		access, err := os.ReadFile(o.accessLog)
		if err != nil {
			t.Fatal(err)
		}
		spans, err := json.Marshal(o.col.Spans(t))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{"access log": string(access), "milvus-lb's output": o.g.lb.Logs(),
			"spans in the collector": string(spans)}
		for _, path := range []string{"/", "/status", "/api/v1/status", "/api/v1/live", "/api/v1/ingresses", "/metrics"} {
			seen["admin "+path] = o.admin(t, path)
		}
		secrets := map[string]string{
			"the marker":              o.marker,
			"the password credential": base64.StdEncoding.EncodeToString([]byte("observer:pw" + o.marker)),
			"the token credential":    base64.StdEncoding.EncodeToString([]byte("tk" + o.marker)),
		}
		for where, text := range seen {
			for what, s := range secrets {
				if i := strings.Index(text, s); i >= 0 {
					t.Errorf("%s holds %s: ...%s...", where, what, text[max(0, i-200):min(len(text), i+len(s)+50)])
				}
			}
		}
		if !strings.Contains(seen["milvus-lb's output"], "level=DEBUG") {
			t.Errorf("milvus-lb logged nothing at debug level; the check above saw less than it should")
		}
	})
}

func (o *observed) checkAccessLog(t *testing.T, lines []map[string]any) {
	t.Helper()
	byMethod := map[string][]map[string]any{}
	for _, l := range lines {
		byMethod[l["method"].(string)] = append(byMethod[l["method"].(string)], l)
		if l["trace_id"] == "" {
			t.Errorf("a line without trace_id: %v", l)
		}
	}
	one := func(method string, match func(map[string]any) bool) map[string]any {
		for _, l := range byMethod[method] {
			if match(l) {
				return l
			}
		}
		t.Errorf("no %s line as expected among %d %s lines: %v", method, len(byMethod[method]), method, byMethod[method])
		return map[string]any{}
	}
	ok := func(l map[string]any) bool { return l["grpc_status"] == "OK" && l["milvus_code"] == "Success" }
	want := func(l map[string]any, fields map[string]any) {
		t.Helper()
		for k, v := range fields {
			if l[k] != v {
				t.Errorf("%s line: %s = %v, want %v (line %v)", l["method"], k, l[k], v, l)
			}
		}
	}
	named := map[string]any{"user": "observer", "db": "default", "collection": observedCollection, "trace_id": o.traceID}
	insert, search := one("Insert", ok), one("Search", ok)
	want(insert, merge(named, map[string]any{"rows": 10.0}))
	want(search, merge(named, map[string]any{"nq": 1.0, "topk": 3.0, "consistency_level": "Strong"}))
	for _, l := range []map[string]any{insert, search} {
		if in, out := l["request_bytes"].(float64), l["response_bytes"].(float64); in < 100 || out < 10 {
			t.Errorf("%s line: request_bytes %v, response_bytes %v; want the messages' sizes", l["method"], in, out)
		}
	}
	want(one("Query", ok), named)
	want(one("Delete", ok), named)
	want(one("CreateCollection", ok), named)
	refused := one("Query", func(l map[string]any) bool { return l["milvus_code"] != "Success" })
	want(refused, named)
	if refused["milvus_reason"] == "" {
		t.Errorf("the refused Query has no milvus_reason: %v", refused)
	}
	// The token client's calls: a token names no user.
	want(one("ShowCollections", ok), map[string]any{"user": "-", "db": "default", "trace_id": o.traceID})
	// The collection is read from the body as it goes to the backend. milvus-lite serves
	// no REST: when it resets the connection before the body went (request_bytes 0, a
	// 503), no name was read; the other call names it.
	sent := 0
	for _, l := range byMethod["/v2/vectordb/entities/query"] {
		w := map[string]any{"user": "observer", "grpc_status": "", "tls_server_name": host, "authority": host, "db": "default"}
		if l["request_bytes"].(float64) > 0 {
			w["collection"] = observedCollection
			sent++
		}
		want(l, w)
		if l["http_status"].(float64) == 0 {
			t.Errorf("REST line without http_status: %v", l)
		}
	}
	if sent == 0 {
		t.Errorf("no REST call's body reached the backend: %v", byMethod["/v2/vectordb/entities/query"])
	}
}

func merge(a, b map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// checkSpans follows the pymilvus application's trace in the collector: its span
// "observe_calls", the gRPC instrumentation's span of each call under it, and milvus-lb's
// span of the same call under that, with the call's attributes.
func (o *observed) checkSpans(t *testing.T) {
	t.Helper()
	var lb []otelcol.Span
	byID := map[string]otelcol.Span{}
	spans := o.col.WaitSpans(t, 30*time.Second, func(s []otelcol.Span) bool {
		lb, byID = nil, map[string]otelcol.Span{}
		search, app := false, false
		for _, sp := range s {
			byID[sp.SpanID] = sp
			if sp.TraceID != o.traceID {
				continue
			}
			app = app || sp.Name == "observe_calls"
			if sp.Service == "milvus-lb" {
				lb = append(lb, sp)
				search = search || sp.Attributes["rpc.method"] == "Search"
			}
		}
		return search && app
	})
	t.Logf("%d spans in the collector, %d of milvus-lb in the application's trace", len(spans), len(lb))
	methods := map[string]otelcol.Span{}
	for _, s := range lb {
		client, ok := byID[s.ParentSpanID]
		if !ok {
			t.Errorf("milvus-lb's span %s (%s) has parent %s, which is no span in the collector", s.SpanID, s.Name, s.ParentSpanID)
			continue
		}
		if client.Service != "observe-client" || client.Name != "/"+s.Name || client.Kind != 3 {
			t.Errorf("milvus-lb's span %s has parent %q of %q, kind %d; want pymilvus's gRPC span /%s", s.Name, client.Name, client.Service, client.Kind, s.Name)
		}
		if app := byID[client.ParentSpanID]; app.Name != "observe_calls" {
			t.Errorf("pymilvus's span %s has parent %q, want the application's span observe_calls", client.Name, app.Name)
		}
		// One span per method, an error one when there is one (the refused Query).
		m, _ := s.Attributes["rpc.method"].(string)
		if _, seen := methods[m]; !seen || s.StatusCode == 2 {
			methods[m] = s
		}
	}
	wantAttrs := func(method string, attrs map[string]any) {
		t.Helper()
		s, ok := methods[method]
		if !ok {
			t.Errorf("no span of milvus-lb for %s in the application's trace", method)
			return
		}
		for k, v := range attrs {
			if s.Attributes[k] != v {
				t.Errorf("%s span: %s = %v, want %v (all: %v)", method, k, s.Attributes[k], v, s.Attributes)
			}
		}
	}
	common := map[string]any{"rpc.system": "grpc", "rpc.service": "milvus.proto.milvus.MilvusService", "db.system": "milvus",
		"db.namespace": "default", "db.collection.name": observedCollection, "rpc.grpc.status_code": int64(0),
		"server.address": "127.0.0.1", "server.port": int64(o.g.lite.Port)}
	wantAttrs("Search", merge(common, map[string]any{"rpc.method": "Search"}))
	wantAttrs("Insert", merge(common, map[string]any{"rpc.method": "Insert"}))
	// The Query Milvus refused: an OK gRPC reply with an error Status.
	q := methods["Query"]
	if q.StatusCode != 2 || q.Attributes["db.response.status_code"] == nil || q.Attributes["rpc.grpc.status_code"] != int64(0) {
		t.Errorf("the refused Query's span: status %d, attributes %v; want an error with db.response.status_code", q.StatusCode, q.Attributes)
	}
}
