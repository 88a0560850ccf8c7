package sock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a buffered Conn over TCP on loopback and the peer's end of it.
func pair(t *testing.T, timeout time.Duration, onDrained func()) (*Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	// Small kernel buffers, so that a peer that does not read fills them quickly; not
	// below loopback's 64 KiB segments, or the receiver's silly-window avoidance turns
	// the transfer into zero-window probes seconds apart.
	_ = raw.(*net.TCPConn).SetWriteBuffer(128 << 10)
	_ = peer.(*net.TCPConn).SetReadBuffer(128 << 10)
	c := New(raw)
	c.Buffer(timeout, onDrained)
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

func TestWriteNeverBlocks(t *testing.T) {
	drained := make(chan struct{}, 16)
	c, peer := pair(t, 0, func() { drained <- struct{}{} })
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	// 8 MiB to a peer that reads nothing: far more than the kernel buffers hold.
	start := time.Now()
	pending := 0
	for off := 0; off < len(data); off += 64 << 10 {
		var err error
		if pending, err = c.WriteNow(data[off : off+64<<10]); err != nil {
			t.Fatal(err)
		}
	}
	if pending == 0 {
		t.Fatal("the kernel took 8 MiB that nobody read; the test needs a peer that can fall behind")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("writes took %v with a peer that does not read: they blocked", d)
	}
	if c.Pending() != pending {
		t.Errorf("Pending() = %d, WriteNow said %d", c.Pending(), pending)
	}
	// Once the peer reads, the backlog goes out, in order, and onDrained is called.
	got := make([]byte, len(data))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the peer read other bytes than were written")
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("onDrained was not called after the backlog went out")
	}
	if c.Pending() != 0 {
		t.Errorf("Pending() = %d after draining", c.Pending())
	}
}

// A backlog that starts with more than 64 KiB (what a large write leaves while the
// drain goroutine is busy) is copied into a buffer kept in backlogs, which goes back
// there once written or outgrown: uploads to a slow backend reuse a few buffers instead
// of leaving one to the collector per write. The bytes arrive as written.
func TestLargeBacklogsKeepTheirBuffers(t *testing.T) {
	c, peer := pair(t, 0, nil)
	var want bytes.Buffer
	write := func(n int) {
		p := make([]byte, n)
		_, _ = rand.Read(p)
		want.Write(p)
		if _, err := c.WriteNow(p); err != nil {
			t.Fatal(err)
		}
	}
	for c.Pending() == 0 {
		write(256 << 10)
	}
	// Once the drain goroutine has taken the backlog, the next write starts a new one.
	for {
		c.mu.Lock()
		taken := c.inflight > 0 && len(c.out) == 0
		c.mu.Unlock()
		if taken {
			break
		}
		time.Sleep(time.Millisecond)
	}
	kept := backlogs.Len()
	for range 3 { // the third outgrows the kept buffer
		write(256 << 10)
	}
	// The first write took a buffer from the list (or made one); outgrown, it is back.
	if backlogs.Len() < max(kept, 1) {
		t.Errorf("kept backlog buffers: %d before, %d after a kept buffer was outgrown", kept, backlogs.Len())
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the peer read other bytes than were written")
	}
}

func TestWriteAndFlushKeepOrder(t *testing.T) {
	c, peer := pair(t, 0, nil)
	var want bytes.Buffer
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(peer)
		done <- b
	}()
	for i := range 2000 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%5000)
		want.Write(p)
		if i%3 == 0 {
			if _, err := c.WriteNow(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if _, err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	c.Close()
	if got := <-done; !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer read %d bytes, not the %d written in order", len(got), want.Len())
	}
}

func TestDrainTimeoutClosesConnection(t *testing.T) {
	c, peer := pair(t, 200*time.Millisecond, nil)
	if _, err := c.WriteNow(make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	// The peer never reads: the drain gives up after the timeout and closes the socket,
	// and the next write says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.WriteNow([]byte("x"))
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Logf("write error after the timeout: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still succeed 10 s after a 200 ms write timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, peer); err != nil {
		t.Fatalf("the peer's read did not end with the connection closed: %v", err)
	}
}

func TestPassthroughUntilBuffered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		p, _ := l.Accept()
		if p != nil {
			_, _ = io.Copy(p, p) // echo
			p.Close()
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := New(raw)
	defer c.Close()
	waiting := make(chan struct{}, 1)
	c.BeforeRead = func() { waiting <- struct{}{} }
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf)
	}()
	// Nothing has arrived yet: the read calls BeforeRead before it waits.
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("a read with nothing to read did not call BeforeRead")
	}
	// Not buffered: Write writes, as a plain connection does (a TLS handshake relies on it).
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if c.Pending() != 0 {
		t.Fatalf("a passthrough write left %d bytes pending", c.Pending())
	}
	if s := <-got; s != "ping" {
		t.Fatalf("echo: %q", s)
	}
}

type wrapper struct{ net.Conn }

func (w wrapper) NetConn() net.Conn { return w.Conn }

func TestFind(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := New(a)
	if got := Find(wrapper{wrapper{c}}); got != c {
		t.Errorf("Find through two wrappers = %v, want the Conn", got)
	}
	if got := Find(wrapper{a}); got != nil {
		t.Errorf("Find without a Conn = %v, want nil", got)
	}
}

func TestPipeWritesFromDrainGoroutine(t *testing.T) {
	// A connection without a descriptor (net.Pipe is synchronous: every write blocks until
	// read): writes still never block the caller.
	a, b := net.Pipe()
	defer b.Close()
	drained := make(chan struct{}, 1)
	c := New(a)
	c.Buffer(0, func() { drained <- struct{}{} })
	defer c.Close()
	if n, err := c.WriteNow([]byte("hello")); err != nil || n != 5 {
		t.Fatalf("WriteNow = %d, %v; want 5 pending", n, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("onDrained not called")
	}
}

// Reads smaller than readAheadSize take what has arrived into a read-ahead buffer and
// hand it out in order; a reader that has taken everything and waits holds no buffer.
func TestReadAheadKeepsOrderAndLetsGo(t *testing.T) {
	c, peer := pair(t, 0, nil)
	waits := 0
	c.BeforeRead = func() {
		waits++
		if c.aheadBuf != nil || len(c.ahead) > 0 {
			t.Error("the reader is about to wait holding a read-ahead buffer")
		}
	}
	want := make([]byte, 1<<20)
	_, _ = rand.Read(want)
	go func() {
		// Bursts larger than readAheadSize, with pauses, so that reads both find more
		// than they asked for and find nothing.
		for off := 0; off < len(want); off += 96 << 10 {
			_, _ = peer.Write(want[off:min(off+96<<10, len(want))])
			time.Sleep(2 * time.Millisecond)
		}
	}()
	got := make([]byte, 0, len(want))
	p := make([]byte, 5000) // not a divisor of anything above
	for len(got) < len(want) {
		n, err := c.Read(p)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from the bytes written")
	}
	if c.aheadBuf != nil || len(c.ahead) > 0 {
		t.Error("a read-ahead buffer is held after every byte was read")
	}
	if waits == 0 {
		t.Error("the reader never waited: the test did not cover reads that find nothing")
	}
}

// The reads and writes go to the descriptor without net.Conn (raw_linux.go); what the
// relay and crypto/tls rely on must stay as net.Conn has it: a read deadline ends a
// waiting read with a timeout (which TLS does not take for a broken connection), the
// peer's close is io.EOF, a reset or a read after Close is a *net.OpError that says so.
func TestReadAndWriteErrorsAreNetConns(t *testing.T) {
	c, peer := pair(t, 0, nil)
	c.BeforeRead = func() {}
	p := make([]byte, 10)

	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(p)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})

	go func() {
		time.Sleep(20 * time.Millisecond) // the read is waiting by then
		_, _ = peer.Write([]byte("hello"))
	}()
	if n, err := c.Read(p); err != nil || string(p[:n]) != "hello" {
		t.Fatalf("waiting read: %q, %v", p[:n], err)
	}

	// A reset: the peer closes with unread data, which makes its kernel answer RST.
	if _, err := c.WriteNow([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	_ = peer.(*net.TCPConn).SetLinger(0)
	_ = peer.Close()
	_, err = c.Read(p)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" || op.Addr == nil {
		t.Fatalf("read after the peer reset: %#v, want a *net.OpError of the read", err)
	}
	if _, err := c.WriteNow([]byte("more")); !errors.As(err, &op) || op.Op != "write" || op.Addr == nil {
		t.Fatalf("write after the peer reset: %#v, want a *net.OpError of the write", err)
	}

	_ = c.Close()
	if _, err := c.Read(p); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
}

func TestReadReportsEOF(t *testing.T) {
	c, peer := pair(t, 0, nil)
	c.BeforeRead = func() {}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("bye"))
		_ = peer.Close()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll: %q, %v; want \"bye\" and the peer's close as io.EOF", got, err)
	}
}
