package dataplane_test

import (
	"bytes"
	"runtime/pprof"
	"testing"
	"time"

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
	waitReaders := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); readers() > want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d connection readers, want at most %d", readers(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	call()
	waitReaders(0)
	call() // woken by their next calls
	waitReaders(0)
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
	for deadline := time.Now().Add(10 * time.Second); readers() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection readers, want none", readers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.Plane.Listeners.Shutdown(20 * time.Second)
	if open := l.Plane.Listeners.ConnStats().Open; open != 0 {
		t.Fatalf("%d connections open after the drain", open)
	}
}
