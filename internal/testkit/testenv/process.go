package testenv

import (
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Process is a child process started for a test. Its output is kept and logged if the test
// fails.
type Process struct {
	Name   string
	cmd    *exec.Cmd
	logs   LogBuffer
	exited chan struct{}
	err    error // Wait's result; read only after exited is closed
	// reaped is set when the test itself stopped or killed the process: the test then owns
	// the verdict on its exit status.
	reaped atomic.Bool
}

// Logs is everything the process printed so far (stdout and stderr interleaved).
func (p *Process) Logs() string { return p.logs.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// startProcess starts c and registers a cleanup that stops it with stop (then SIGKILL after
// grace) and logs its output if the test failed. If wantClean, an exit status other than 0
// after stop fails the test: a user expects a clean exit on SIGTERM.
func startProcess(t testing.TB, name string, c *exec.Cmd, stop os.Signal, grace time.Duration, wantClean bool) *Process {
	t.Helper()
	p := &Process{Name: name, cmd: c, exited: make(chan struct{})}
	c.Stdout = &p.logs
	c.Stderr = &p.logs
	setDeathSignal(c)
	if err := c.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", name, err)
	}
	go func() {
		p.err = c.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		stoppedByUs := false
		select {
		case <-p.exited:
		default:
			stoppedByUs = true
			_ = c.Process.Signal(stop)
			select {
			case <-p.exited:
			case <-time.After(grace):
				t.Errorf("%s did not exit within %v of %v; killed", name, grace, stop)
				_ = c.Process.Kill()
				<-p.exited
			}
		}
		if wantClean && p.err != nil && !p.reaped.Load() {
			var ee *exec.ExitError
			if errors.As(p.err, &ee) && ee.ExitCode() == 66 {
				t.Errorf("%s: the race detector found a data race (exit status 66)", name)
			} else if stoppedByUs {
				t.Errorf("%s exited with %v after %v, want exit status 0", name, p.err, stop)
			} else {
				t.Errorf("%s exited on its own during the test: %v", name, p.err)
			}
		}
		if t.Failed() {
			t.Logf("----- %s output -----\n%s----- end of %s output -----", name, p.logs.String(), name)
		}
	})
	return p
}

// Stop sends sig and waits up to grace for the process to exit. It returns the exit error
// (nil for status 0), or an error if the process had to be killed.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	p.reaped.Store(true)
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New(p.Name + " did not exit in time; killed")
	}
}

// Kill stops the process at once with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.reaped.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
