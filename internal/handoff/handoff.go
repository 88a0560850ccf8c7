// Package handoff restarts milvus-lb in place without refusing a connection. On
// Upgrade (SIGHUP), the running process starts its successor, the executable now at the
// same path with the same arguments, and hands it its listening sockets; once the
// successor serves its first configuration (Ready), the old process stops accepting and
// drains: HTTP/2 clients get GOAWAY and their calls in flight finish. A listening socket
// is never closed in between, so no connection is refused: connections the kernel
// queued on it are accepted by whichever process accepts next.
//
// Why not cloudflare/tableflip, which does the same: its descriptor table keeps a
// duplicate of every socket it has handed out until the next upgrade, with no way to drop
// one, and milvus-lb's ports come and go with the configuration. A port removed by a
// reload would stay bound (its connections accepted and never served) and could not be
// bound again when a later reload adds it back. Why not two processes on one port with
// SO_REUSEPORT: the kernel spreads new connections over both sockets, and those queued
// on the old one when it closes are reset.
//
// The protocol between the two processes: the successor gets the sockets as inherited
// descriptors, named in MILVUS_LB_LISTENERS ("addr=fd,..."), and a pipe in
// MILVUS_LB_READY_FD on which it writes one byte when it serves. A successor that exits
// or does not say so within the timeout is killed, and the old process serves on.
package handoff

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	envListeners = "MILVUS_LB_LISTENERS"
	envReady     = "MILVUS_LB_READY_FD"
)

// Handoff is one process's side of restarts in place: the sockets it inherited, those
// it has open, and its successor. Safe for concurrent use.
type Handoff struct {
	log     *slog.Logger
	pidFile string
	timeout time.Duration
	settle  time.Duration
	// lastAccept is when a listener last accepted a connection, in unix nanos.
	lastAccept atomic.Int64

	mu        sync.Mutex
	inherited map[string]*os.File // from the predecessor, by address, until taken
	open      map[string]*listener
	parent    *os.File // the predecessor's ready pipe, until Ready
	ready     bool
	serving   chan struct{} // closed by Ready
	upgrading bool
	exit      chan struct{} // closed when a successor took over
}

// New returns the Handoff of this process: with the sockets its predecessor handed
// over, if it was started by one. Ready writes the process id to pidFile when it is not
// empty. A successor has timeout to become ready. handshake bounds how long a connection
// accepted may take before it is served (the listeners' handshake timeout): once a
// successor took over, this process drains only when the last connection it accepted is
// that old, so that none is closed before it could be told GOAWAY.
func New(log *slog.Logger, pidFile string, timeout, handshake time.Duration) (*Handoff, error) {
	h := &Handoff{log: log, pidFile: pidFile, timeout: timeout, settle: handshake,
		inherited: map[string]*os.File{}, open: map[string]*listener{}, exit: make(chan struct{}), serving: make(chan struct{})}
	if v, ok := os.LookupEnv(envReady); ok {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("handoff: %s=%q is not a descriptor", envReady, v)
		}
		h.parent = os.NewFile(uintptr(fd), "ready pipe")
	}
	if v := os.Getenv(envListeners); v != "" {
		for item := range strings.SplitSeq(v, ",") {
			i := strings.LastIndexByte(item, '=')
			fd, err := strconv.Atoi(item[i+1:])
			if i < 0 || err != nil || fd < 3 {
				return nil, fmt.Errorf("handoff: %s: %q is not address=descriptor", envListeners, item)
			}
			h.inherited[item[:i]] = os.NewFile(uintptr(fd), item[:i])
		}
	}
	// Not for the processes this one starts: they get their own.
	os.Unsetenv(envReady)
	os.Unsetenv(envListeners)
	return h, nil
}

// Listen returns the listening socket for addr: the one the predecessor handed over, or
// a new one. Until it is closed, it is handed to a successor.
func (h *Handoff) Listen(network, addr string) (net.Listener, error) {
	if network != "tcp" {
		return nil, fmt.Errorf("handoff: network %s: only tcp", network)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var ln net.Listener
	var err error
	if f := h.inherited[addr]; f != nil {
		delete(h.inherited, addr)
		ln, err = net.FileListener(f)
		f.Close()
		if err == nil {
			h.log.Info("listening socket taken over from the previous process", "address", addr)
		}
	} else {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, err
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("handoff: %s is not a TCP listener", addr)
	}
	l := &listener{TCPListener: tl, h: h, addr: addr, closed: make(chan struct{})}
	h.open[addr] = l
	return l, nil
}

// listener is a socket Listen opened; closing it keeps it from successors. Once handed
// over, this process stops accepting on it (pause): Accept waits for Close, and the
// socket lives on in the successor.
type listener struct {
	*net.TCPListener
	h         *Handoff
	addr      string
	paused    atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept returns the next connection, and records when it came (see settleFor). Until
// the process is Ready it waits: a socket taken over is live already, and a call it
// accepted before the first configuration is in force would find no route; meanwhile the
// predecessor, or the kernel's backlog, holds the connections.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case <-l.h.serving:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.TCPListener.Accept()
	if err != nil && l.paused.Load() {
		<-l.closed
		return nil, net.ErrClosed
	}
	if err == nil {
		l.h.lastAccept.Store(time.Now().UnixNano())
	}
	return c, err
}

// pause stops accepting: this process's copy of the socket closes, the successor's stays.
func (l *listener) pause() {
	l.paused.Store(true)
	_ = l.TCPListener.Close()
}

func (l *listener) Close() error {
	l.h.mu.Lock()
	if l.h.open[l.addr] == l {
		delete(l.h.open, l.addr)
	}
	l.h.mu.Unlock()
	l.closeOnce.Do(func() { close(l.closed) })
	if l.paused.Load() {
		return nil
	}
	return l.TCPListener.Close()
}

// Ready says that this process serves: it writes the pid file, closes the inherited
// sockets it did not take (ports the configuration no longer has), and tells the
// predecessor, which then drains.
func (h *Handoff) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready {
		return nil
	}
	h.ready = true
	close(h.serving)
	for addr, f := range h.inherited {
		f.Close()
		delete(h.inherited, addr)
	}
	if h.pidFile != "" {
		if err := writePIDFile(h.pidFile); err != nil {
			return err
		}
	}
	notify("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid()))
	if h.parent != nil {
		_, err := h.parent.Write([]byte{1})
		h.parent.Close()
		h.parent = nil
		if err != nil {
			return fmt.Errorf("handoff: telling the previous process: %w", err)
		}
	}
	return nil
}

// Exit is closed when a successor took over: the process should drain and exit.
func (h *Handoff) Exit() <-chan struct{} { return h.exit }

// writePIDFile writes the process id to path by renaming a new file over it, so that a
// reader (systemd's PIDFile=) never sees it half written.
func writePIDFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// dup returns a duplicate of l's descriptor for a successor to inherit.
func dup(l *net.TCPListener) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			syscall.CloseOnExec(nfd)
		}
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(nfd), "listener"), nil
}

var errBusy = errors.New("a restart is already under way")
