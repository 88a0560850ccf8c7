package testenv

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child if the test binary dies without running
// its cleanups (a panic in another goroutine, a -timeout kill), so that no milvus-lite or
// milvus-lb outlives a test run.
func setDeathSignal(c *exec.Cmd) {
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// processExists reports whether a process with this pid is alive (signal 0 probes it).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
