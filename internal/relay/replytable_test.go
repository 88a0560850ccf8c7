package relay_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// A client's decoder reads a reply's headers and trailers as indexes into its HPACK
// table from its second call on, as it does from a gRPC server directly, not as literals
// it decodes on every call. A connection silent for PingInterval lets go of its table,
// says so at the start of its next block (a size update to 0, then to the table's size),
// and its calls go on.
func TestReplyHeadersAreIndexedForTheClient(t *testing.T) {
	o := lbtest.Options{}
	o.Plane.Listener = listener.DefaultOptions()
	o.Plane.Listener.PingInterval = 300 * time.Millisecond
	l := lbtest.Start(t, o, lbtest.Addrs(lbtest.Backends(t, 1, fakemilvus.Options{NoRecord: true}))...)
	var tap readTap
	c, _ := l.Dial(t, false, grpc.WithContextDialer(tap.dial))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	search := func() {
		t.Helper()
		if _, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "demo"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		search()
	}
	blocks := tap.replyBlocks()
	if len(blocks) != 6 {
		t.Fatalf("%d reply header blocks for 3 calls, want 6", len(blocks))
	}
	for i, b := range blocks[2:] {
		if len(b) > 3 {
			t.Errorf("call %d: reply block %d is %d bytes (% x), want indexes of a byte or two each", 2+i/2, i%2+1, len(b), b)
		}
	}
	// Silent for PingInterval: the relay lets go of the table, then pings.
	tap.waitPing(t)
	search()
	search()
	blocks = tap.replyBlocks()[6:]
	if len(blocks) != 4 {
		t.Fatalf("%d reply header blocks for 2 calls after the silence, want 4", len(blocks))
	}
	if b := blocks[0]; !bytes.HasPrefix(b, []byte{0x20, 0x3f, 0xe1, 0x01}) {
		t.Errorf("the first reply block after the silence starts % x, want size updates to 0 and 256 (20 3f e1 01)", b)
	}
	for i, b := range blocks[2:] {
		if len(b) > 3 {
			t.Errorf("the second call after the silence: reply block %d is %d bytes (% x), want indexes", i+1, len(b), b)
		}
	}
}

// replyBlocks returns the header blocks of the HEADERS frames read so far (the relay
// sends no CONTINUATION for blocks this small).
func (r *readTap) replyBlocks() [][]byte {
	var blocks [][]byte
	r.frames(func(f http2.Frame) {
		if h, ok := f.(*http2.HeadersFrame); ok {
			blocks = append(blocks, bytes.Clone(h.HeaderBlockFragment()))
		}
	})
	return blocks
}

// waitPing waits until the client has read a PING of the relay's own (keepalive), not an
// acknowledgement of one of its own.
func (r *readTap) waitPing(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pinged := false
		r.frames(func(f http2.Frame) {
			p, ok := f.(*http2.PingFrame)
			pinged = pinged || ok && !p.IsAck()
		})
		if pinged {
			return
		}
	}
	t.Fatal("the relay sent no PING in 10 s of silence")
}
