package relay

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// A backend connection without streams is closed once idle for the pool's idle timeout,
// and the next call dials a new one; a connection with a stream is kept however long.
func TestIdleBackendConnectionsAreClosed(t *testing.T) {
	be := fakemilvus.New(fakemilvus.Options{Name: "b0", NoRecord: true})
	if err := be.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Stop)
	p := NewPool()
	p.idleTimeout = 200 * time.Millisecond
	t.Cleanup(p.Close)
	key := poolKey{addr: be.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err := p.get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.get(ctx, key); err != nil || again != c1 {
		t.Fatalf("second get: %p, %v; want the same connection %p", again, err, c1)
	}

	// Busy: a stream is open on it (the relay's streams are keyed by id).
	c1.mu.Lock()
	c1.streams[1] = &stream{}
	c1.mu.Unlock()
	time.Sleep(4 * p.idleTimeout)
	if !c1.hasRoom() || p.ready(key) != c1 {
		t.Fatal("a connection with an open stream was closed or left the pool")
	}

	c1.mu.Lock()
	delete(c1.streams, 1)
	c1.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c1.mu.Lock()
		closed := c1.closed
		c1.mu.Unlock()
		if closed && p.ready(key) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an idle connection was still open (closed %v) or in the pool after 5 s", closed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c2, err := p.get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c1 {
		t.Fatal("the closed connection was handed out again")
	}
}
