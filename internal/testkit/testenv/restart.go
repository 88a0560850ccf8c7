package testenv

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ReadPID reads a milvus-lb --pid-file; 0 while there is none.
func ReadPID(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// WaitNewPID waits until the pid file names a process other than old: after a restart in
// place (SIGHUP), the successor serves.
func WaitNewPID(ctx context.Context, t testing.TB, path string, old int) int {
	t.Helper()
	for ctx.Err() == nil {
		if pid := ReadPID(t, path); pid != old && pid != 0 {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no new process took over from %d", old)
	return 0
}

// StopGenerations stops the milvus-lb process that pidFile names with SIGTERM, as a
// service manager would after restarts in place, and waits until every generation is
// gone (they share the output pipe that Exited waits for). Register it with t.Cleanup
// after StartLB, so that it runs first: StartLB's own cleanup signals the first process
// only, which a restart has replaced.
func (lb *LB) StopGenerations(t testing.TB, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || pid == lb.Pid() {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-lb.Exited():
	case <-time.After(30 * time.Second):
		t.Errorf("milvus-lb pid %d did not exit within 30 s of SIGTERM; killed", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
