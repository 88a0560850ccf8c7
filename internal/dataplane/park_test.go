package dataplane_test

import (
	"bytes"
	"runtime/pprof"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// readers counts the goroutines reading a client connection.
func readers() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return bytes.Count(b.Bytes(), []byte("relay.(*clientConn).readFrames("))
}

// waitReaders waits until at most want connection readers are left: the others parked
// (or their connections ended).
func waitReaders(t *testing.T, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); readers() > want; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection readers, want at most %d", readers(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An idle client connection holds no goroutine (it parks), and a parked one still takes
// calls, and ends when its client leaves: over TLS and h2c.
func TestIdleConnectionsPark(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, 60*time.Second)
	const n = 10
	var clients []milvuspb.MilvusServiceClient
	var conns []*grpc.ClientConn
	for i := range n {
		c, cc := l.Dial(t, i%2 == 0)
		clients, conns = append(clients, c), append(conns, cc)
	}
	call := func() {
		t.Helper()
		for _, c := range clients {
			if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	call()
	waitReaders(t, 0)
	call() // woken by their next calls
	waitReaders(t, 0)
	for _, cc := range conns[:n/2] {
		_ = cc.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); l.Plane.Listeners.ConnStats().Open > n/2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after %d of %d clients left", l.Plane.Listeners.ConnStats().Open, n/2, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	call2 := clients[n/2:]
	for _, c := range call2 {
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
}

// The drain reaches parked connections: it tells them to go and waits for them, and
// none is left open when it ends.
func TestDrainEndsParkedConnections(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, 60*time.Second)
	for i := range 6 {
		c, _ := l.Dial(t, i%2 == 0)
		if _, err := c.GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	waitReaders(t, 0)
	l.Plane.Listeners.Shutdown(20 * time.Second)
	if open := l.Plane.Listeners.ConnStats().Open; open != 0 {
		t.Fatalf("%d connections open after the drain", open)
	}
}

// A connection whose client broke off a header block (a padded HEADERS frame whose padding
// is longer than the frame: a stream error, with the block's CONTINUATION still due)
// parks like any idle connection, and the connections after it, whose readers use Framers
// lent from the same pool, take their calls: a Framer that still waits for a CONTINUATION
// is not lent again (relay/readframer.go), or the next connection's first frame would
// break its frame order check and end that connection.
func TestParkAfterBrokenHeaderBlock(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	nc := dialTCP(t, l.PlainAddr())
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := newRawH2(t, nc)
	c.check(c.fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPadded, 1, []byte{200}))
	for {
		if f, ok := c.read().(*http2.RSTStreamFrame); ok {
			if f.StreamID != 1 || f.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("RST_STREAM %d %v, want stream 1 PROTOCOL_ERROR", f.StreamID, f.ErrCode)
			}
			break
		}
	}
	waitReaders(t, 0)
	// Raw clients: grpc-go would dial again, unseen, when a connection ends before its call
	// is sent.
	for i := range 20 {
		nc := dialTCP(t, l.PlainAddr())
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		c := newRawH2(t, nc)
		c.call(1)
		if st := c.readUntilEnd(1); st != "0" {
			t.Fatalf("connection %d after the broken block: grpc-status %q, want 0", i+1, st)
		}
		waitReaders(t, 0)
	}
}
