package handoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Upgrade starts the successor and hands it the open listening sockets. It returns nil
// once the successor is ready; Exit is then closed. Otherwise the successor is stopped
// and this process serves on. Only one upgrade runs at a time, and only once this
// process is ready itself.
func (h *Handoff) Upgrade() error {
	files, names, err := h.begin()
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	notify("RELOADING=1")
	err = h.start(files, names)
	if err != nil {
		notify("READY=1") // still the service's main process
	}
	h.mu.Lock()
	h.upgrading = false
	if err == nil {
		for _, l := range h.open {
			l.pause()
		}
		close(h.exit)
	}
	h.mu.Unlock()
	return err
}

// settleFor is how long to wait, once this process stopped accepting, before it drains:
// until the last connection it accepted has had the time to finish its handshake and be
// served. A connection still in its handshake when the drain begins would be closed
// unannounced, and its client's first call would fail.
func (h *Handoff) settleFor(now time.Time) time.Duration {
	last := h.lastAccept.Load()
	if last == 0 {
		return 0
	}
	return max(0, time.Unix(0, last).Add(h.settle+100*time.Millisecond).Sub(now))
}

// begin marks the upgrade under way and duplicates the open sockets, in address order.
func (h *Handoff) begin() (files []*os.File, names []string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.ready:
		return nil, nil, errors.New("this process is not serving yet")
	case h.upgrading:
		return nil, nil, errBusy
	}
	select {
	case <-h.exit:
		return nil, nil, errors.New("a successor took over already")
	default:
	}
	for _, addr := range slices.Sorted(maps.Keys(h.open)) {
		f, err := dup(h.open[addr].TCPListener)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("handing over %s: %w", addr, err)
		}
		files, names = append(files, f), append(names, addr)
	}
	h.upgrading = true
	return files, names, nil
}

// start runs the successor with the sockets and waits until it is ready, exits, or the
// timeout passes.
func (h *Handoff) start(files []*os.File, names []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// Descriptors 0-2 are the standard streams, 3 the ready pipe, 4... the sockets.
	listeners := make([]string, len(names))
	for i, addr := range names {
		listeners[i] = addr + "=" + strconv.Itoa(4+i)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = append([]*os.File{w}, files...)
	cmd.Env = append(os.Environ(), envReady+"=3", envListeners+"="+strings.Join(listeners, ","))
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", exe, err)
	}
	h.log.Info("restarting in place: successor started", "pid", cmd.Process.Pid, "executable", exe, "listeners", names)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		var b [1]byte
		n, _ := io.ReadFull(r, b[:])
		ready <- n == 1
	}()
	timer := time.NewTimer(h.timeout)
	defer timer.Stop()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		err = errors.New("it exited before serving")
	case err = <-exited:
		err = fmt.Errorf("it exited before serving: %v", err)
	case <-timer.C:
		err = fmt.Errorf("it did not serve within %v", h.timeout)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("successor (pid %d): %w", cmd.Process.Pid, err)
}

// Watch upgrades on every SIGHUP until ctx ends. The context it returns ends with ctx or
// when a successor took over, which is when the caller drains and exits.
func (h *Handoff) Watch(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer cancel()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-h.exit:
				wait := h.settleFor(time.Now())
				h.log.Info("restarting in place: the successor serves; this process accepts no more connections and drains", "after", wait.String())
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
				cancel()
				return
			case <-hup:
				go func() {
					if err := h.Upgrade(); err != nil {
						h.log.Error("restart in place failed; serving on", "error", err)
					}
				}()
			}
		}
	}()
	return ctx
}
