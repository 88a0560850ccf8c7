package testenv

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// StartProcess is startProcess for test packages that run their own servers (the
// controller tests start milvus-lite on namespace addresses, not on 127.0.0.1): c runs
// until the test ends, then gets stop and, after grace, SIGKILL; its output is logged if
// the test failed; with wantClean, an exit status other than 0 fails the test.
func StartProcess(t testing.TB, name string, c *exec.Cmd, stop os.Signal, grace time.Duration, wantClean bool) *Process {
	t.Helper()
	return startProcess(t, name, c, stop, grace, wantClean)
}
