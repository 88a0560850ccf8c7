package e2e

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// connectScript connects with pymilvus as the guide does, with the arguments given as
// JSON, and prints the exception's message if it fails.
const connectScript = `
import json, sys
from pymilvus import connections
try:
    connections.connect("default", timeout=20, **json.loads(sys.argv[1]))
    print("CONNECTED")
except Exception as e:
    print("FAILED:", e)
`

// TestTLSMistakesAreTraced makes the TLS mistakes a pymilvus user makes. pymilvus says the
// same "illegal connection params or server unavailable" for all of them; milvus-lb's log
// says which one it was, with the client's address, and its metric counts it by reason.
func TestTLSMistakesAreTraced(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	g.serve(t)
	port := strconv.Itoa(g.port)
	for _, tc := range []struct {
		name, args, reason, log string
	}{
		{"wrong server_name", `{"host": "127.0.0.1", "port": "` + port + `", "secure": true, "server_name": "other.milvus.io", "server_pem_path": "` + g.ca + `"}`,
			"unknown_server_name", "server_name=other.milvus.io"},
		{"no server_name", `{"host": "127.0.0.1", "port": "` + port + `", "secure": true, "server_pem_path": "` + g.ca + `"}`,
			"no_server_name", ""},
		{"CA not given", `{"host": "127.0.0.1", "port": "` + port + `", "secure": true, "server_name": "` + host + `"}`,
			"certificate_rejected", "server_name=" + host},
		{"plaintext to the TLS port", `{"host": "127.0.0.1", "port": "` + port + `"}`,
			"not_tls", "first record does not look like a TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
			defer cancel()
			out, _ := exec.CommandContext(ctx, testenv.Python(t), "-c", connectScript, tc.args).CombinedOutput()
			if !strings.Contains(string(out), "FAILED:") || !strings.Contains(string(out), "illegal connection params or server unavailable") {
				t.Errorf("pymilvus printed:\n%s\nwant it to fail with \"illegal connection params or server unavailable\" (the README maps that message)", out)
			}
			want := "reason=" + tc.reason
			if !waitLog(g.lb, want, tc.log) {
				t.Errorf("milvus-lb's log has no line with %q and %q:\n%s", want, tc.log, g.lb.Logs())
			}
		})
	}

	metrics := fetch(t, "http://"+g.lb.AdminAddr+"/metrics")
	for _, reason := range []string{"unknown_server_name", "no_server_name", "certificate_rejected", "not_tls"} {
		series := `milvus_lb_tls_handshake_failures_total{reason="` + reason + `"} `
		if !strings.Contains(metrics, series) || strings.Contains(metrics, series+"0\n") {
			t.Errorf("/metrics lacks a non-zero %s", series)
		}
	}

	// The guide's own connection, right, leaves no such trace.
	g.pymilvus(t)
	if n := strings.Count(g.lb.Logs(), "TLS handshake failed") + strings.Count(g.lb.Logs(), "certificate for another name"); n != 4 {
		t.Errorf("%d TLS problem lines after the guide's check, want only the 4 mistakes':\n%s", n, g.lb.Logs())
	}
}

// waitLog waits until the balancer has logged a line holding all of parts: a handshake
// is logged by the balancer's goroutine, which may finish after the client has.
func waitLog(lb *testenv.LB, parts ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(lb.Logs()) {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
