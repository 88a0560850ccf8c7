package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
}

// StartMilvusLite starts a milvus-lite server on a free loopback port with its own data
// directory (two servers cannot share one), waits until CheckHealth answers healthy, and
// stops it with SIGINT (its only clean shutdown) when the test ends.
func StartMilvusLite(t testing.TB) *MilvusLite {
	t.Helper()
	data := filepath.Join(t.TempDir(), "milvus-lite")
	// The port is chosen here and not with --port 0: milvus-lite prints the requested port,
	// not the bound one, so the caller could not learn it.
	var last error
	for range 3 {
		port := FreePort(t)
		c := MilvusLiteCommand(t, data, "127.0.0.1", port)
		p := startProcess(t, "milvus-lite:"+strconv.Itoa(port), c, syscall.SIGINT, 15*time.Second, false)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		last = waitFor(60*time.Second, p.Exited(), func() error { return CheckHealth(addr) })
		if last == nil {
			t.Logf("milvus-lite ready on %s (data %s)", addr, data)
			return &MilvusLite{Process: p, Addr: addr, Port: port, DataDir: data}
		}
		select {
		case <-p.Exited(): // lost the port race, or a real failure: retry, then report
			t.Logf("milvus-lite on %s exited: %v\n%s", addr, last, p.Logs())
		default:
			t.Fatalf("milvus-lite on %s: %v\n%s", addr, last, p.Logs())
		}
	}
	t.Fatalf("milvus-lite would not start: %v", last)
	return nil
}

// MilvusLiteCommand is the command that runs a milvus-lite server in the foreground on
// host:port with data in dataDir, for tests that start it their own way (another address,
// a network namespace). It goes through test/clients/milvus_lite_server.py, which makes
// SIGINT, milvus-lite's only clean shutdown, work even when this process ignores SIGINT
// (as a background job of a script does); stop it with SIGINT.
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
