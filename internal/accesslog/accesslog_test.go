package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// search is a record as the data path makes it for a pymilvus Search.
func search() *call.Record {
	return &call.Record{
		Start:    time.Date(2026, 5, 4, 3, 2, 1, 987654321, time.FixedZone("JST", 9*3600)),
		Duration: 1234567 * time.Nanosecond,
		Client:   "10.0.0.7:51234", Port: 443, Authority: "milvus-demo.milvus.io",
		TLSVersion: 0x0304, ServerName: "milvus-demo.milvus.io", User: "root",
		GRPC: true, Method: "Search", DB: "default", Collection: "books", Consistency: "Bounded",
		NQ: 1, TopK: 10, RequestID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Backend: "default/milvus-demo:19530", Endpoint: "10.0.1.5:19530", Attempts: 1,
		Code: codes.OK, MilvusCode: 8, MilvusErrCode: 49, MilvusReason: "rate limit exceeded[rate=10]",
		RequestBytes: 3172, ResponseBytes: 64,
	}
}

func encode(r *call.Record, f Format) string {
	var e encoder
	return string(e.record(nil, r, f))
}

// TestJSONMatchesDocs: the line has the fields, in the order, of the example in
// README.md, and the values the record holds.
func TestJSONMatchesDocs(t *testing.T) {
	line := encode(search(), JSON)
	if !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for l := range strings.Lines(string(doc)) {
		if strings.HasPrefix(l, `{"time":`) {
			example = l
			break
		}
	}
	if keys(t, example) != keys(t, line) {
		t.Errorf("README.md's example has the fields\n%s\nthe log writes\n%s", keys(t, example), keys(t, line))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"time": "2026-05-03T18:02:01.987Z", "duration_ms": 1.235, "client": "10.0.0.7:51234", "port": 443.0,
		"tls_version": "TLSv1.3", "user": "root", "method": "Search", "db": "default", "collection": "books",
		"consistency_level": "Bounded", "nq": 1.0, "topk": 10.0, "rows": 0.0, "grpc_status": "OK", "http_status": 0.0,
		"milvus_code": "ServiceRateLimit", "milvus_reason": "rate limit exceeded[rate=10]", "rate_limit": "", "request_id": "req-1",
		"backend": "default/milvus-demo:19530", "endpoint": "10.0.1.5:19530", "attempts": 1.0,
		"request_bytes": 3172.0, "response_bytes": 64.0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

// keys lists a JSON object's keys in order.
func keys(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	var out []string
	if _, err := dec.Token(); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(out, ",")
}

func TestText(t *testing.T) {
	r := search()
	r.User, r.Collection, r.MilvusCode, r.MilvusErrCode, r.MilvusReason = "", "my books", 0, 0, ""
	r.GRPC, r.Method, r.Status = false, "/v2/vectordb/entities/search", 200
	want := `time=2026-05-03T18:02:01.987Z duration_ms=1.235 client=10.0.0.7:51234 port=443 ` +
		`authority=milvus-demo.milvus.io tls_version=TLSv1.3 tls_server_name=milvus-demo.milvus.io user=- ` +
		`method=/v2/vectordb/entities/search db=default collection="my books" consistency_level=Bounded rows=0 nq=1 topk=10 ` +
		`request_bytes=3172 response_bytes=64 backend=default/milvus-demo:19530 endpoint=10.0.1.5:19530 attempts=1 ` +
		`grpc_status="" http_status=200 milvus_code=Success milvus_reason="" rate_limit="" request_id=req-1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736` + "\n"
	if got := encode(r, Text); got != want {
		t.Errorf("text line\n got %s\nwant %s", got, want)
	}
}

// TestRateLimitField: a call milvus-lb's own limit refused names the limit, which tells it
// from the README's example, a call Milvus rate-limited (rate_limit empty).
func TestRateLimitField(t *testing.T) {
	r := search()
	r.Endpoint, r.Attempts, r.RateLimit = "", 0, "reads-per-user"
	line := encode(r, JSON)
	for _, want := range []string{`"endpoint":"",`, `"attempts":0,`, `"milvus_code":"ServiceRateLimit",`, `"rate_limit":"reads-per-user",`} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %s: %s", want, line)
		}
	}
}

// TestHostileValues: whatever a client puts in the names it controls, a line stays one
// valid line.
func TestHostileValues(t *testing.T) {
	r := search()
	r.Authority = "a\"b\\c\nd\re\tf\x00g\x7f"
	r.Collection = "\xff\xfe invalid \u2028 sep"
	r.RequestID = strings.Repeat("x", 1000)
	r.ServerName = "x=y z"
	for _, f := range []Format{JSON, Text} {
		line := encode(r, f)
		if strings.Count(line, "\n") != 1 || strings.ContainsAny(line[:len(line)-1], "\r\n\x00\u2028") {
			t.Errorf("%s: not one clean line: %q", f, line)
		}
		if strings.Contains(line, strings.Repeat("x", maxRequestID+1)) {
			t.Errorf("%s: request id not cut to %d bytes", f, maxRequestID)
		}
		if f == JSON && !json.Valid([]byte(line)) {
			t.Errorf("invalid JSON: %q", line)
		}
	}
	var got map[string]string
	_ = json.Unmarshal([]byte(encode(r, JSON)), &got)
	if got["authority"] != r.Authority {
		t.Errorf("authority %q, want %q back", got["authority"], r.Authority)
	}
}

func TestOpen(t *testing.T) {
	if l, err := Open("off", JSON); l != nil || err != nil {
		t.Errorf("Open(off) = %v, %v; want nil, nil", l, err)
	}
	var off *Logger
	off.Observe(search()) // a nil log observes nothing
	if off.Stats() != (Stats{}) || off.Close() != nil {
		t.Error("a nil log has counts or a close error")
	}

	bad := filepath.Join(t.TempDir(), "no-such-dir", "access.log")
	if _, err := Open(bad, JSON); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(%s) = %v; want an error naming the path", bad, err)
	}

	path := filepath.Join(t.TempDir(), "access.log")
	for range 2 { // appended to, not truncated
		l, err := Open(path, Text)
		if err != nil {
			t.Fatal(err)
		}
		l.Observe(search())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if s := l.Stats(); s.Written != 1 {
			t.Errorf("stats %+v, want 1 written", s)
		}
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "method=Search"); n != 2 {
		t.Errorf("%s holds %d lines, want 2:\n%s", path, n, b)
	}

	for _, s := range []string{"json", "text", ""} {
		if _, err := ParseFormat(s); err != nil {
			t.Errorf("ParseFormat(%q): %v", s, err)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml) accepted")
	}
}

// gate is a writer that blocks until it is opened, and says when a write is waiting.
type gate struct {
	waiting chan struct{}
	open    chan struct{}
	once    sync.Once
	bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.waiting) })
	<-g.open
	return g.Buffer.Write(p)
}

// TestFullQueueDrops: with the writer stuck, calls go on; the lines beyond the queue are
// dropped and counted, the others written once it moves.
func TestFullQueueDrops(t *testing.T) {
	g := &gate{waiting: make(chan struct{}), open: make(chan struct{})}
	const queue = 8
	l := New(g, JSON, queue)
	l.Observe(search())
	// The writer takes that one; its flush (after flushDelay) blocks on the gate.
	<-g.waiting
	for range queue + 5 {
		l.Observe(search())
	}
	if s := l.Stats(); s.Dropped != 5 {
		t.Errorf("stats %+v, want 5 dropped", s)
	}
	close(g.open)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Written != queue+1 || strings.Count(g.String(), "\n") != queue+1 {
		t.Errorf("stats %+v, %d lines; want %d written", s, strings.Count(g.String(), "\n"), queue+1)
	}
}

// TestConcurrentCallers: calls ending at once on every core each get their whole line,
// none lost or torn, when the queue has room.
func TestConcurrentCallers(t *testing.T) {
	var out bytes.Buffer
	const callers, calls = 4, 500
	l := New(&out, JSON, callers*calls)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			r := search()
			r.RequestID = fmt.Sprintf("caller-%d", c)
			for range calls {
				l.Observe(r)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for line := range strings.Lines(out.String()) {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		per[got["request_id"].(string)]++
	}
	for c := range callers {
		if n := per[fmt.Sprintf("caller-%d", c)]; n != calls {
			t.Errorf("caller %d: %d lines, want %d", c, n, calls)
		}
	}
	if s := l.Stats(); s.Written != callers*calls || s.Dropped != 0 {
		t.Errorf("stats %+v, want %d written", s, callers*calls)
	}
}

// TestLongLines: lines longer than a chunk's room (a client's very long authority) are
// written whole, in order, between ordinary ones.
func TestLongLines(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, JSON, 1000)
	long := search()
	long.Authority = strings.Repeat("a", 3*chunkSize)
	for i := range 300 {
		r := search()
		if i%100 == 50 {
			r = long
		}
		l.Observe(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 300 {
		t.Fatalf("%d lines, want 300", len(lines))
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		want := search().Authority
		if i%100 == 50 {
			want = long.Authority
		}
		if got["authority"] != want {
			t.Fatalf("line %d: authority %.20q..., want %.20q...", i, got["authority"], want)
		}
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorsCounted(t *testing.T) {
	l := New(failing{}, JSON, 16)
	for range 3 {
		l.Observe(search())
	}
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the write error", err)
	}
	if s := l.Stats(); s.WriteFailed != 3 || s.Written != 0 {
		t.Errorf("stats %+v, want 3 failed", s)
	}
}

// TestJSONStringAsEncodingJSON: a string with any byte value at any place of the
// eight-byte steps reads back as encoding/json's encoding of it does.
func TestJSONStringAsEncodingJSON(t *testing.T) {
	var cases []string
	for c := range 256 {
		for at := range 18 {
			cases = append(cases, strings.Repeat("a", at)+string(rune(c))+"tail-bytes", strings.Repeat("b", at)+string([]byte{byte(c)}))
		}
	}
	cases = append(cases, "", "milvus-demo.milvus.io", "é ü \u2028\u2029 \xff", strings.Repeat("plain", 40))
	for _, s := range cases {
		var got, want string
		b := appendJSONString(nil, s)
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(b, &got); err != nil || json.Unmarshal(std, &want) != nil || got != want {
			t.Fatalf("%q: %s reads back as %q (%v), want %q", s, b, got, err, want)
		}
	}
}

func TestDurationMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0.000", 1234567: "1.235", 999: "0.001", 499: "0.000",
		3 * time.Second: "3000.000", 1500 * time.Microsecond: "1.500", -2 * time.Millisecond: "-2.000"} {
		if got := appendMillis(nil, d); string(got) != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}
