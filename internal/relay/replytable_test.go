package relay_test

import (
	"bytes"
	"context"
	"net"
	"sync"
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
// table from its second call on, as it does from a gRPC server directly; sent as literals
// on every call they cost the client more than they saved the relay. A connection silent
// for PingInterval lets go of its table, says so at the start of its next block (a size
// update to 0, then to the table's size), and its calls go on.
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
	blocks := tap.replyBlocks(t)
	if len(blocks) != 6 {
		t.Fatalf("%d reply header blocks for 3 calls, want 6", len(blocks))
	}
	for i, b := range blocks[2:] {
		if len(b) > 3 {
			t.Errorf("call %d: reply block %d is %d bytes (% x), want indexes of a byte or two each", 2+i/2, i%2+1, len(b), b)
		}
	}
	// Silent for PingInterval: the relay pings, the client answers, the table goes.
	time.Sleep(2 * o.Plane.Listener.PingInterval)
	search()
	search()
	blocks = tap.replyBlocks(t)[6:]
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

// readTap keeps what a client connection reads.
type readTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *readTap) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	return tappedConn{c, r}, err
}

// replyBlocks returns the header blocks of the HEADERS frames read so far (the relay
// sends no CONTINUATION for blocks this small).
func (r *readTap) replyBlocks(t *testing.T) [][]byte {
	t.Helper()
	r.mu.Lock()
	fr := http2.NewFramer(nil, bytes.NewReader(bytes.Clone(r.buf.Bytes())))
	r.mu.Unlock()
	var blocks [][]byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return blocks
		}
		if h, ok := f.(*http2.HeadersFrame); ok {
			blocks = append(blocks, bytes.Clone(h.HeaderBlockFragment()))
		}
	}
}

type tappedConn struct {
	net.Conn
	tap *readTap
}

func (c tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.tap.mu.Lock()
	c.tap.buf.Write(p[:n])
	c.tap.mu.Unlock()
	return n, err
}
