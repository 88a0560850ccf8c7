// Package conformance checks milvus-lb with test suites nobody on this project wrote, and
// with TLS clients that probe what a user relies on: h2spec (HTTP/2, RFC 7540/7541) against
// the TLS and h2c listeners, the gRPC interop client against the gRPC interop server behind
// milvus-lb, each ssl-policy's protocols and ciphers, the certificate chain, SNI fallback,
// certificate rotation, mutual TLS, and malformed configuration edits on a running
// balancer. Everything runs the milvus-lb binary built from this tree, on 127.0.0.1.
//
// The external tools are pinned in tools/go.mod and built by scripts/tools.sh into the
// cache; a test that needs them and finds them missing FAILS, saying so. docs/conformance.md
// lists what runs and every case that is excluded, with the reason.
package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	toolsOnce sync.Once
	toolsPath string
	toolsErr  error
)

// tool returns the path of a tool built by scripts/tools.sh. The directory is keyed by the
// hash of tools/go.mod, go.sum and otelcol/main.go, computed here exactly as the script
// does, so that a test never runs a tool of another pinned version.
func tool(t testing.TB, name string) string {
	t.Helper()
	toolsOnce.Do(func() {
		mod := filepath.Join(testenv.Root(t), "tools")
		h := sha256.New()
		for _, f := range []string{"go.mod", "go.sum", "otelcol/main.go"} {
			b, err := os.ReadFile(filepath.Join(mod, f))
			if err != nil {
				toolsErr = err
				return
			}
			h.Write(b)
		}
		toolsPath = filepath.Join(testenv.CacheDir(), "tools-"+hex.EncodeToString(h.Sum(nil))[:16])
	})
	if toolsErr != nil {
		t.Fatalf("tools module: %v", toolsErr)
	}
	p := filepath.Join(toolsPath, name)
	if _, err := os.Stat(filepath.Join(toolsPath, ".ok")); err != nil {
		t.Fatalf("%s is not built (no %s): run scripts/tools.sh", name, toolsPath)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing from %s: run scripts/tools.sh", name, toolsPath)
	}
	return p
}

// writeFile writes a manifest or PEM file for the balancer to read.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile swaps path's content atomically, as editors and `kubectl create secret
// --dry-run -o yaml > f` followed by mv do, so the balancer never reads half a file.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// indent prefixes every line of s, for PEM inside a YAML block scalar.
func indent(s []byte, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(string(s)) {
		b.WriteString(prefix)
		b.WriteString(line)
	}
	return b.String()
}

// tlsSecret is a kubernetes.io/tls Secret in the default namespace, as `kubectl create
// secret tls NAME --cert --key --dry-run=client -o yaml` writes it (with stringData for
// readability).
func tlsSecret(name string, certPEM, keyPEM []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
type: kubernetes.io/tls
stringData:
  tls.crt: |
%s  tls.key: |
%s`, name, indent(certPEM, "    "), indent(keyPEM, "    "))
}

// serviceFor is a Service (port 80) and its Endpoints pointing at one address on
// 127.0.0.1, as a Kubernetes cluster would hold them for a one-pod backend.
func serviceFor(name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  ports:
  - name: main
    port: 80
    targetPort: %[2]d
---
apiVersion: v1
kind: Endpoints
metadata:
  name: %[1]s
subsets:
- addresses: [{ip: 127.0.0.1}]
  ports: [{name: main, port: %[2]d}]
`, name, port)
}

// yamlDocs joins manifests into one multi-document file.
func yamlDocs(docs ...string) []byte {
	return []byte(strings.Join(docs, "\n---\n"))
}

// bodyBackend is an HTTP server (HTTP/1.1 and h2c) on 127.0.0.1 that answers every request
// with 200 and a short body after reading the request body: what h2spec needs behind the
// balancer to see a complete response (HEADERS then DATA) on its target path. It also
// counts requests and keeps the last request's headers.
type bodyBackend struct {
	srv  *http.Server
	Addr string
	Port int

	mu   sync.Mutex
	n    int
	last http.Header
}

func startBodyBackend(t testing.TB) *bodyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bodyBackend{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	b.srv = &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.n++
		b.last = r.Header.Clone()
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "milvus-lb conformance backend\n")
	})}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// Requests returns how many requests reached the backend and the headers of the last one.
func (b *bodyBackend) Requests() (int, http.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.last
}
