// Package testenv gives end-to-end tests the real parts: the milvus-lb binary, a milvus-lite
// server (a real Milvus gRPC server in Python), and the client programs under test/. Every
// process it starts listens on 127.0.0.1 only and is stopped by t.Cleanup.
//
// The Python venv, the Node SDK and the Go client's dependencies are installed by
// scripts/setup.sh. A test that needs them and finds them missing FAILS (it does not skip),
// telling the user to run that script: in CI a skipped end-to-end test would look like a
// pass. What needs none of them (FreePort, Root) serves in-process tests too.
//
// A test package that builds binaries (BuildMilvusLB, BuildGoClient) should call Main from
// its TestMain so that they are removed at the end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const setupHint = "run scripts/setup.sh first (it installs the pinned milvus-lite, pymilvus, Node SDK and Go client)"

// Main runs the tests of a package and removes the binaries built for it.
func Main(m *testing.M) {
	code := m.Run()
	binMu.Lock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	binMu.Unlock()
	os.Exit(code)
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// Root is the repository root: the directory of the go.mod that declares milvus-lb.
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && bytes.HasPrefix(b, []byte("module github.com/milvus-lb/milvus-lb\n")) {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("no go.mod of module github.com/milvus-lb/milvus-lb above the working directory")
				return
			}
			dir = parent
		}
	})
	if rootErr != nil {
		t.Fatalf("testenv: %v", rootErr)
	}
	return root
}

// CacheDir is where scripts/setup.sh keeps what it installs: $MILVUS_LB_CACHE, else
// /var/cache/milvus-lb for root, else ~/.cache/milvus-lb. scripts/lib.sh has the same rule.
func CacheDir() string {
	if d := os.Getenv("MILVUS_LB_CACHE"); d != "" {
		return d
	}
	if os.Getuid() == 0 {
		return "/var/cache/milvus-lb"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "milvus-lb")
	}
	return filepath.Join(os.TempDir(), "milvus-lb-cache")
}

// Venv is the Python venv with milvus-lite and pymilvus. The test fails if it is missing or
// was built from another test/clients/requirements.txt than the one in the tree.
func Venv(t testing.TB) string {
	t.Helper()
	venv := filepath.Join(CacheDir(), "venv")
	req, err := os.ReadFile(filepath.Join(Root(t), "test", "clients", "requirements.txt"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	sum := sha256.Sum256(req)
	want := hex.EncodeToString(sum[:])
	got, err := os.ReadFile(filepath.Join(venv, ".milvus-lb-requirements"))
	switch {
	case err != nil:
		t.Fatalf("testenv: no Python venv at %s: %s", venv, setupHint)
	case strings.TrimSpace(string(got)) != want:
		t.Fatalf("testenv: the venv at %s was built from another test/clients/requirements.txt: %s", venv, setupHint)
	}
	return venv
}

// Python is the venv's interpreter.
func Python(t testing.TB) string {
	t.Helper()
	return filepath.Join(Venv(t), "bin", "python")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process
// may take it before the caller binds it; callers that can should listen on :0 instead.
func FreePort(t testing.TB) int {
	t.Helper()
	// The kernel may hand the same ephemeral port to the next bind once this one closes,
	// and a test that asks for several ports before binding any would get duplicates:
	// never return a port twice in one process.
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
	t.Fatal("testenv: no fresh free port after 100 tries")
	return 0
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// PortFree reports whether 127.0.0.1:port can be bound now.
func PortFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

var (
	binMu     sync.Mutex
	binDir    string
	binBuilt  = map[string]string{}
	binFailed = map[string]string{} // key -> why its build failed
)

// build runs `go build` once per test binary for each key, into a directory that Main
// removes.
func build(t testing.TB, key string, cmd func(out string) *exec.Cmd) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binBuilt[key]; ok {
		return p
	}
	if msg, ok := binFailed[key]; ok {
		t.Fatalf("testenv: %s (failed earlier in this test binary)", msg) // not again per test
	}
	if binDir == "" {
		removeStaleBinDirs()
		d := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, key)
	c := cmd(out)
	start := time.Now()
	if b, err := c.CombinedOutput(); err != nil {
		binFailed[key] = fmt.Sprintf("%s: %v\n%s", strings.Join(c.Args, " "), err, b)
		t.Fatalf("testenv: %s", binFailed[key])
	}
	t.Logf("testenv: built %s in %v", key, time.Since(start).Round(time.Millisecond))
	binBuilt[key] = out
	return out
}

// binDirPrefix + the test binary's pid names the directory of the binaries it built.
const binDirPrefix = "milvus-lb-testenv-"

// removeStaleBinDirs removes the binary directories of test processes that are gone: Main
// removes its own, but a test binary killed by -timeout or a crash never reaches it.
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binDirPrefix))
		if err != nil || pid == os.Getpid() || processExists(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// BuildMilvusLB builds ./cmd/milvus-lb once per test binary and returns its path. When the
// tests run with -race, so is the binary built: its data races then fail the test through
// its exit status.
//
// MILVUS_LB_BIN, if set, names a milvus-lb binary to use instead (a release build, or one
// built from another checkout).
func BuildMilvusLB(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MILVUS_LB_BIN"); bin != "" {
		return bin
	}
	return build(t, "milvus-lb", func(out string) *exec.Cmd {
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		c := exec.Command("go", append(args, "./cmd/milvus-lb")...)
		c.Dir = Root(t)
		return c
	})
}

// BuildGoClient builds the Milvus Go client check program (test/goclient, a module of its
// own) once per test binary and returns its path.
func BuildGoClient(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(t), "test", "goclient")
	if _, err := os.Stat(filepath.Join(CacheDir(), "bin", "milvus-goclient")); err != nil {
		// Not fatal by itself (go build can fetch), but say why a build may be slow or fail.
		t.Logf("testenv: the Go client was never built by scripts/setup.sh; building it now")
	}
	return build(t, "milvus-goclient", func(out string) *exec.Cmd {
		c := exec.Command("go", "build", "-o", out, ".")
		c.Dir = dir
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		return c
	})
}

// NodeCheck returns the path of test/node/check.js after making sure the pinned Node SDK
// is installed beside it.
func NodeCheck(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(t), "test", "node")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("testenv: node is not installed: %s", setupHint)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@zilliz", "milvus2-sdk-node", "package.json")); err != nil {
		t.Fatalf("testenv: the Node SDK is not installed in %s: %s", dir, setupHint)
	}
	return filepath.Join(dir, "check.js")
}

// GuideCheck returns the command line that runs test/clients/guide_check.py with the
// venv's Python.
func GuideCheck(t testing.TB) []string {
	t.Helper()
	return []string{Python(t), filepath.Join(Root(t), "test", "clients", "guide_check.py")}
}

// RunClient runs a client check program (argv) with a deadline, logs its output, and fails
// the test unless it exits 0 and prints a line starting with passPrefix. It returns the
// output.
func RunClient(t testing.TB, timeout time.Duration, passPrefix string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	c.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := c.CombinedOutput()
	t.Logf("$ %s  (%v)\n%s", strings.Join(argv, " "), time.Since(start).Round(time.Millisecond), out)
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v", filepath.Base(argv[0]), timeout)
	}
	if err != nil {
		t.Fatalf("%s failed: %v", filepath.Base(argv[len(argv)-1]), err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, passPrefix) {
			return string(out)
		}
	}
	t.Fatalf("%s exited 0 but printed no %q line", filepath.Base(argv[len(argv)-1]), passPrefix)
	return ""
}

// LogBuffer collects a process's or a logger's output; safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls ready every 100 ms until it succeeds, the deadline passes, or exited is
// closed (the process died). It returns the last error.
func waitFor(timeout time.Duration, exited <-chan struct{}, ready func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited: %w", err)
		case <-deadline.C:
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}
