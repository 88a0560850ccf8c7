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
	bin := filepath.Join(Venv(t), "bin", "milvus-lite")
	data := filepath.Join(t.TempDir(), "milvus-lite")
	// The port is chosen here and not with --port 0: milvus-lite prints the requested port,
	// not the bound one, so the caller could not learn it.
	var last error
	for range 3 {
		port := FreePort(t)
		c := exec.Command(bin, "server", "--data-dir", data, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
		c.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
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
