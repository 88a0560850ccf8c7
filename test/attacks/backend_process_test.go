package attacks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

const backendAddrPrefix = "BACKEND-ADDR "

// startBackendProcess runs a fake Milvus in a process of its own (this test binary, as
// TestBackendProcess) and returns its address; it stops when the test ends.
//
// For the attacks whose backend must hold much memory of its own: a gRPC server marshals
// each response whole before flow control lets any of it go, so a client that never reads
// 100 responses of 2 MiB makes the backend hold 200 MiB whatever the balancer does. In the
// test process that would hide what the balancer holds, which is what the heap bound is
// about; in production the backend is another machine.
func startBackendProcess(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackendProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "BACKEND_PROCESS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Closing stdin stops the backend; a backend that does not stop is killed.
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), backendAddrPrefix); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return addr
		}
	}
	t.Fatalf("backend process exited without its address (%v)", sc.Err())
	return ""
}

// TestBackendProcess is the backend process of startBackendProcess; run alone, it skips.
func TestBackendProcess(t *testing.T) {
	if os.Getenv("BACKEND_PROCESS") == "" {
		t.Skip("runs only as the backend process of the attack tests")
	}
	be := fakemilvus.New(fakemilvus.Options{Name: "b0", NoRecord: true})
	if err := be.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer be.Stop()
	fmt.Println(backendAddrPrefix + be.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test process closes it or exits
}
