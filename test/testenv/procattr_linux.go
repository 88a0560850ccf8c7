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
