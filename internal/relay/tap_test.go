package relay_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
)

// frameLog keeps the bytes one side of an HTTP/2 connection sends, to read its frames
// back. One log per connection and direction.
type frameLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	preface bool // the bytes start with the client preface (a client's side)
}

func (l *frameLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// frames calls fn with each whole frame logged so far; a frame is valid during its call.
func (l *frameLog) frames(fn func(http2.Frame)) {
	l.mu.Lock()
	b := bytes.Clone(l.buf.Bytes())
	l.mu.Unlock()
	if l.preface {
		if len(b) < len(http2.ClientPreface) {
			return
		}
		b = b[len(http2.ClientPreface):]
	}
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.SetMaxReadFrameSize(1 << 24)
	for f, err := fr.ReadFrame(); err == nil; f, err = fr.ReadFrame() {
		fn(f)
	}
}

// backendTap is a TCP relay in front of a backend that logs the frames the balancer
// sends it.
type backendTap struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn  // both sides of each relayed connection
	logs   []*frameLog // what the balancer sent on each
	closed bool
}

func tapToBackend(t *testing.T, backend string) *backendTap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &backendTap{addr: ln.Addr().String()}
	t.Cleanup(func() {
		ln.Close()
		tap.mu.Lock()
		defer tap.mu.Unlock()
		tap.closed = true
		for _, c := range tap.conns {
			c.Close()
		}
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			bc, err := net.Dial("tcp", backend)
			if err != nil {
				nc.Close()
				continue
			}
			log := &frameLog{preface: true}
			tap.mu.Lock()
			tap.conns = append(tap.conns, nc, bc)
			tap.logs = append(tap.logs, log)
			if tap.closed { // accepted as the test ended
				nc.Close()
				bc.Close()
			}
			tap.mu.Unlock()
			go func() { _, _ = io.Copy(nc, bc) }()
			go func() { _, _ = io.Copy(io.MultiWriter(bc, log), nc) }()
		}
	}()
	return tap
}

// streamUpdates are the increments of the stream (not connection) WINDOW_UPDATEs the
// balancer sent so far.
func (tap *backendTap) streamUpdates() []uint32 {
	tap.mu.Lock()
	logs := tap.logs
	tap.mu.Unlock()
	var incs []uint32
	for _, log := range logs {
		log.frames(func(f http2.Frame) {
			if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID != 0 {
				incs = append(incs, wu.Increment)
			}
		})
	}
	return incs
}

// readTap logs what a client's connection reads, the frames the balancer sends it: dial
// is the client's dialer.
type readTap struct{ frameLog }

func (r *readTap) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	return tappedConn{c, &r.frameLog}, err
}

type tappedConn struct {
	net.Conn
	log *frameLog
}

func (c tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	_, _ = c.log.Write(p[:n])
	return n, err
}
