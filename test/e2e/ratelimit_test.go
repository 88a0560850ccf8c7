package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

// The limit TestRateLimitRideThrough loads: searches of collection rl, at most
// limitRate a second, with the default burst (half a second of the rate).
const (
	limitRate       = 30.0
	rateLimitWindow = 20 * time.Second
	rateLimitsAnnot = `    milvus-lb.io/rate-limits: '[{"name":"searches","collection":"rl","operation":"read","calls":%v}]'` + "\n"
)

// TestRateLimitRideThrough: pymilvus and the Go client search through milvus-lb over TLS,
// together well over a limit of 30 calls/s: every search they make succeeds (each client
// backs off and retries on its own on the reply Milvus sends over its quota), and the
// searches milvus-lb admitted over 20 s are 30/s within 5 %. The refusals are counted as
// milvus-lb's in its metric and access log, apart from any Milvus itself would answer.
func TestRateLimitRideThrough(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	writeFile(t, g.ingressFile(), strings.Replace(testenv.GuideIngress(t, g.arn, g.port),
		"  annotations:\n", "  annotations:\n"+fmt.Sprintf(rateLimitsAnnot, limitRate), 1))
	accessLog := filepath.Join(g.dir, "access.log")
	g.serve(t, "--access-log", accessLog)
	tlsArgs := []string{"--host", g.address, "--port", strconv.Itoa(g.port), "--server-name", host, "--ca", g.ca}

	// pymilvus makes the collection, directly on Milvus, and warms its schema cache; then
	// the Go client warms its own (a DescribeCollection, which its retry does not cover)
	// while the limit is still unused, and starts searching; then pymilvus starts.
	py := startLoad(t, "ratelimit_load", append([]string{testenv.Python(t),
		filepath.Join(testenv.Root(t), "test", "clients", "ratelimit_load.py"),
		"--direct", g.lite.Addr, "--collection", "rl", "--threads", "4"}, tlsArgs...)...)
	py.waitLine(t, "ratelimit_load: ready", 90*time.Second)
	goc := startLoad(t, "goclient", testenv.BuildGoClient(t), "-addr", fmt.Sprintf("%s:%d", g.address, g.port),
		"-server-name", host, "-ca", g.ca, "-load", "rl", "-workers", "4", "-timeout", "3m")
	goc.waitLine(t, "goclient: load started", 60*time.Second)
	py.send(t, "go\n")
	py.waitLine(t, "ratelimit_load: load started", 30*time.Second)

	time.Sleep(time.Second) // the bucket's burst is spent: from here on it is the rate alone
	before := scrapeMetrics(t, g.lb.AdminAddr)
	time.Sleep(rateLimitWindow)
	after := scrapeMetrics(t, g.lb.AdminAddr)
	py.end(t, "ratelimit_load: PASS")
	goc.end(t, "goclient: PASS")

	search := []string{`method="Search"`, `milvus_code="Success"`}
	admitted := after.sum("milvus_lb_requests_total", search...) - before.sum("milvus_lb_requests_total", search...)
	refused := after.sum("milvus_lb_rate_limited_total", `limit="searches"`, `method="Search"`) -
		before.sum("milvus_lb_rate_limited_total", `limit="searches"`, `method="Search"`)
	want := limitRate * rateLimitWindow.Seconds()
	t.Logf("over %v: %v searches admitted (%.1f/s, limit %v/s), %v refused by milvus-lb", rateLimitWindow, admitted,
		admitted/rateLimitWindow.Seconds(), limitRate, refused)
	if math.Abs(admitted-want) > 0.05*want {
		t.Errorf("%v searches admitted in %v; want %v ± 5 %%", admitted, rateLimitWindow, want)
	}
	if refused < want/10 {
		t.Errorf("%v searches refused in %v: the clients did not press on the limit", refused, rateLimitWindow)
	}
	// milvus-lite limits nothing: every rate-limited call is milvus-lb's, and counted so.
	final := scrapeMetrics(t, g.lb.AdminAddr)
	limited := final.sum("milvus_lb_requests_total", `milvus_code="ServiceRateLimit"`)
	if ours := final.sum("milvus_lb_rate_limited_total"); ours != limited || ours == 0 {
		t.Errorf("rate_limited_total = %v, requests_total{milvus_code=ServiceRateLimit} = %v; want equal, not 0", ours, limited)
	}
	checkRateLimitLog(t, accessLog)
}

// checkRateLimitLog: the access log names the limit on refused searches, which no
// endpoint answered, and on no other line.
func checkRateLimitLog(t *testing.T, path string) {
	t.Helper()
	var lines []map[string]any
	deadline := time.Now().Add(10 * time.Second) // the log is written behind the calls
	for {
		lines = readJSONLines(t, path)
		if len(lines) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	refused, admitted := 0, 0
	for _, l := range lines {
		if l["method"] != "Search" {
			continue
		}
		switch {
		case l["rate_limit"] == "searches" && l["milvus_code"] == "ServiceRateLimit" && l["endpoint"] == "":
			refused++
		case l["rate_limit"] == "" && l["milvus_code"] == "Success" && l["endpoint"] != "":
			admitted++
		default:
			t.Errorf("a Search line neither admitted nor refused by the limit: %v", l)
		}
	}
	if refused == 0 || admitted == 0 {
		t.Errorf("access log: %d refused and %d admitted Search lines; want both", refused, admitted)
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.Lines(string(b)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// metricsText is one scrape of /metrics.
type metricsText string

func scrapeMetrics(t *testing.T, admin string) metricsText {
	t.Helper()
	return metricsText(fetch(t, "http://"+admin+"/metrics"))
}

// sum adds up the samples of metric name whose labels include every one of labels
// (`key="value"`).
func (m metricsText) sum(name string, labels ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(m)))
	sc.Buffer(nil, 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += v
		}
	}
	return total
}

// loadClient is a client program whose standard input the test holds: it acts on a line
// and stops at the end of input.
type loadClient struct {
	*testenv.Process
	stdin io.WriteCloser
}

func startLoad(t *testing.T, name string, argv ...string) *loadClient {
	t.Helper()
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ %s", strings.Join(argv, " "))
	return &loadClient{Process: testenv.StartProcess(t, name, c, syscall.SIGTERM, 10*time.Second, true), stdin: stdin}
}

// waitLine waits until the client has printed a line starting with prefix.
func (l *loadClient) waitLine(t *testing.T, prefix string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains("\n"+l.Logs(), "\n"+prefix) {
		select {
		case <-l.Exited():
			if !strings.Contains("\n"+l.Logs(), "\n"+prefix) {
				t.Fatalf("%s exited before printing %q:\n%s", l.Name, prefix, l.Logs())
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no %q within %v:\n%s", l.Name, prefix, timeout, l.Logs())
		}
	}
}

func (l *loadClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(l.stdin, s); err != nil {
		t.Fatalf("%s: %v", l.Name, err)
	}
}

// end closes the client's input and waits for it to print its verdict and exit. A call in
// flight may be waiting out a back-off of up to 3 s.
func (l *loadClient) end(t *testing.T, pass string) {
	t.Helper()
	_ = l.stdin.Close()
	l.waitLine(t, pass, 30*time.Second)
	select {
	case <-l.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit after its verdict", l.Name)
	}
	t.Logf("%s:\n%s", l.Name, l.Logs())
}
