package relay_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
)

// backendTap is a TCP relay in front of a backend that reads the frames the balancer
// sends it.
type backendTap struct {
	addr   string
	mu     sync.Mutex
	conns  []net.Conn // both sides of each relayed connection
	incs   []uint32   // the increments of stream (not connection) WINDOW_UPDATEs
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
			tap.mu.Lock()
			tap.conns = append(tap.conns, nc, bc)
			if tap.closed { // accepted as the test ended
				nc.Close()
				bc.Close()
			}
			tap.mu.Unlock()
			go func() { _, _ = io.Copy(nc, bc) }()
			pr, pw := io.Pipe()
			go func() { _, err := io.Copy(io.MultiWriter(bc, pw), nc); pw.CloseWithError(err) }()
			go tap.read(pr)
		}
	}()
	return tap
}

// read notes the stream WINDOW_UPDATEs among the frames after the client preface.
func (tap *backendTap) read(r io.Reader) {
	defer func() { _, _ = io.Copy(io.Discard, r) }()
	if _, err := io.ReadFull(r, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID != 0 {
			tap.mu.Lock()
			tap.incs = append(tap.incs, wu.Increment)
			tap.mu.Unlock()
		}
	}
}

// streamUpdates are the increments of the stream WINDOW_UPDATEs read so far.
func (tap *backendTap) streamUpdates() []uint32 {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]uint32(nil), tap.incs...)
}
