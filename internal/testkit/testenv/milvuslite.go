package testenv

import (
	"context"
	"errors"
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

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// MilvusLite is a running milvus-lite server.
type MilvusLite struct {
	*Process
	Addr    string // 127.0.0.1:port, plaintext gRPC (h2c)
	Port    int
	DataDir string
	next    []*Process // started by PrepareRestarts; one serves after each restart
}

// StartMilvusLite starts a milvus-lite server on a free loopback port with its own data
// directory (two servers cannot share one), waits until CheckHealth answers healthy, and
// stops it with SIGINT when the test ends.
func StartMilvusLite(t testing.TB) *MilvusLite {
	t.Helper()
	return StartMilvusLites(t, 1)[0]
}

// StartMilvusLites starts n milvus-lite servers as StartMilvusLite does, all at once:
// each spends seconds in Python's imports before it listens (tens of seconds on a busy
// machine), and those overlap.
func StartMilvusLites(t testing.TB, n int) []*MilvusLite {
	t.Helper()
	ms := make([]*MilvusLite, n)
	for i := range ms {
		ms[i] = launchMilvusLite(t, filepath.Join(t.TempDir(), "milvus-lite"))
	}
	for i, m := range ms {
		// The port is chosen here and not with --port 0: milvus-lite prints the requested
		// port, not the bound one, so the caller could not learn it.
		for try := 1; ; try++ {
			err := waitFor(5*time.Minute, m.Exited(), func() error { return CheckHealth(m.Addr) })
			if err == nil {
				t.Logf("milvus-lite ready on %s (data %s)", m.Addr, m.DataDir)
				break
			}
			select {
			case <-m.Exited(): // lost the port race, or a real failure: retry, then report
				if try < 3 {
					t.Logf("milvus-lite on %s exited: %v\n%s", m.Addr, err, m.Logs())
					ms[i] = launchMilvusLite(t, m.DataDir)
					m = ms[i]
					continue
				}
			default:
			}
			t.Fatalf("milvus-lite on %s: %v\n%s", m.Addr, err, m.Logs())
		}
	}
	return ms
}

// launchMilvusLite starts a milvus-lite process on a free port.
func launchMilvusLite(t testing.TB, dataDir string) *MilvusLite {
	port := FreePort(t)
	c := MilvusLiteCommand(t, dataDir, "127.0.0.1", port)
	p := startProcess(t, "milvus-lite:"+strconv.Itoa(port), c, syscall.SIGINT, 15*time.Second, false)
	return &MilvusLite{Process: p, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, DataDir: dataDir}
}

// PrepareRestarts starts, for each of ms while it runs, a process that a later Restart
// will make serve (ms may name one server more than once, for as many restarts), and
// waits until each has done Python's imports and waits for the data directory
// (test/clients/milvus_lite_server.py --when-free): a restart then costs the stop and
// the opening of the data only, not the imports (seconds, minutes on a busy machine).
func PrepareRestarts(t testing.TB, ms ...*MilvusLite) {
	t.Helper()
	var started []*Process
	for _, m := range ms {
		started = append(started, m.StartNext(t))
	}
	for _, p := range started {
		err := waitFor(5*time.Minute, p.Exited(), func() error {
			if !strings.Contains(p.Logs(), "waiting until the data directory is free") {
				return errors.New("still starting")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s, started to take over: %v\n%s", p.Name, err, p.Logs())
		}
	}
}

// StartNext starts, and does not wait for, a process that a later Restart of m may make
// serve, as PrepareRestarts does: a test that restarts a server many times keeps one or
// two such processes ahead rather than one per restart (each holds 150 MB or more).
func (m *MilvusLite) StartNext(t testing.TB) *Process {
	t.Helper()
	c := MilvusLiteCommand(t, m.DataDir, "127.0.0.1", m.Port)
	c.Args = append(c.Args, "--when-free")
	p := startProcess(t, "milvus-lite:"+strconv.Itoa(m.Port), c, syscall.SIGINT, 15*time.Second, false)
	m.next = append(m.next, p)
	return p
}

// Restart starts a milvus-lite that was stopped or killed again, on its port and with its
// data directory (a restarted proxy pod comes back at its address with its cluster's
// data), with a process PrepareRestarts started if there is one, and waits until
// CheckHealth answers healthy.
func (m *MilvusLite) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-m.Exited():
	default:
		t.Fatalf("milvus-lite on %s: restarted while it runs", m.Addr)
	}
	if len(m.next) == 0 {
		PrepareRestarts(t, m)
	}
	var serving *Process
	err := waitFor(2*time.Minute, nil, func() error {
		for i, p := range m.next {
			if strings.Contains(p.Logs(), "gRPC server listening on") {
				serving = p
				m.next = append(m.next[:i], m.next[i+1:]...)
				return CheckHealth(m.Addr)
			}
			select {
			case <-p.Exited():
				return fmt.Errorf("%s exited:\n%s", p.Name, p.Logs())
			default:
			}
		}
		if serving != nil {
			return CheckHealth(m.Addr)
		}
		return errors.New("no process serves yet")
	})
	if err != nil {
		t.Fatalf("milvus-lite on %s did not start again: %v", m.Addr, err)
	}
	m.Process = serving
}

// MilvusLiteCommand is the command that runs a milvus-lite server in the foreground on
// host:port with data in dataDir, for tests that start it their own way (another address,
// a network namespace). It goes through test/clients/milvus_lite_server.py, which stops
// the server gracefully (no new calls, calls in flight finish, data closed) on SIGTERM
// or SIGINT, even when this process ignores SIGINT (as a background job of a script
// does).
func MilvusLiteCommand(t testing.TB, dataDir, host string, port int) *exec.Cmd {
	t.Helper()
	c := exec.Command(Python(t), filepath.Join(Root(t), "test", "clients", "milvus_lite_server.py"),
		"--data-dir", dataDir, "--host", host, "--port", strconv.Itoa(port))
	c.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	return c
}

// CheckHealth calls Milvus' CheckHealth on a plaintext address and returns an error unless
// it answers is_healthy.
func CheckHealth(addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := milvuspb.NewMilvusServiceClient(conn).CheckHealth(ctx, &milvuspb.CheckHealthRequest{})
	if err != nil {
		return err
	}
	if !resp.GetIsHealthy() {
		return fmt.Errorf("is_healthy=false: %v", resp.GetReasons())
	}
	return nil
}
