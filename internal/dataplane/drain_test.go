package dataplane_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// A client whose connection was accepted just before the balancer began to drain (it was
// still in its TLS handshake, or had not sent its first bytes) gets its call answered:
// over HTTP/2 the call is taken and then the connection is told to go (GOAWAY), over
// HTTP/1.1 the request is answered with "Connection: close". Before, such a connection
// was closed unanswered.
func TestConnectionAcceptedBeforeDrainIsServed(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{REST: true})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	tlsAddr := "127.0.0.1:" + strconv.Itoa(l.tlsPort)
	plainAddr := "127.0.0.1:" + strconv.Itoa(l.plain)

	// Accepted, but not a byte sent yet. A connection still in the kernel's backlog when
	// the listening socket closes is reset, by milvus-lb as by any server: the test
	// waits until the balancer has accepted both.
	before := l.Plane.Listeners.ConnStats().Accepted
	h2Conn := dialTCP(t, tlsAddr)
	h1Conn := dialTCP(t, plainAddr)
	for l.Plane.Listeners.ConnStats().Accepted < before+2 {
		if ctx.Err() != nil {
			t.Fatal("the balancer did not accept the two connections")
		}
		time.Sleep(time.Millisecond)
	}

	closed := make(chan struct{})
	go func() { l.Plane.Close(20 * time.Second); close(closed) }()
	waitRefused(ctx, t, tlsAddr)

	// gRPC over TLS, on the connection accepted before the drain.
	cc, err := grpc.NewClient("passthrough:///"+tlsAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: l.ca.Pool(), ServerName: host})),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return h2Conn, nil }),
		grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := milvuspb.NewMilvusServiceClient(cc).GetVersion(ctx, &milvuspb.GetVersionRequest{}); err != nil {
		t.Errorf("gRPC call on a connection accepted before the drain: %v; want it answered", err)
	}

	// REST over HTTP/1.1, the same.
	body := `{"dbName":"_default"}`
	req := "POST /v2/vectordb/collections/list HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	_ = h1Conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := h1Conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(h1Conn), nil)
	if err != nil {
		t.Fatalf("REST request on a connection accepted before the drain: %v; want it answered", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("REST answer %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}
	h1Conn.Close()
	cc.Close()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the drain did not end")
	}
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitRefused waits until addr refuses connections: the balancer stopped accepting.
func waitRefused(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	for ctx.Err() == nil {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			// Reset: the socket closed with this connection in its backlog.
			if !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "reset") {
				t.Fatal(err)
			}
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the balancer never stopped accepting")
}

// A client may number a stream, then read the drain's notice (GOAWAY with the highest id
// and a PING), answer the PING, and only then write the stream's HEADERS: gRPC C core
// writes its control frames first. The stream was begun before the client knew of the
// drain, so the balancer takes it: it is answered, and the final GOAWAY's last stream id
// covers it. Before the drain's second PING, that GOAWAY went out at the first answer
// and the stream was refused (REFUSED_STREAM), which a client with gRPC's transparent
// retries off (pymilvus with grpc.enable_retries 0) reports as a failed call.
func TestDrainTakesStreamWrittenAfterPingAnswer(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	nc := dialTCP(t, l.PlainAddr())
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := newRawH2(t, nc)
	c.call(1)
	if status := c.readUntilEnd(1); status != "0" {
		t.Fatalf("the call before the drain: grpc-status %q", status)
	}

	closed := make(chan struct{})
	go func() { l.Plane.Close(20 * time.Second); close(closed) }()
	var notice [8]byte
	c.hold = true // the notice's PING is answered below, with the stream
	for notice == ([8]byte{}) {
		switch f := c.read().(type) {
		case *http2.GoAwayFrame:
			if f.LastStreamID != 1<<31-1 {
				t.Fatalf("first GOAWAY of the drain: last stream id %d, want 2^31-1", f.LastStreamID)
			}
		case *http2.PingFrame:
			notice = f.Data
		}
	}
	// The answer and the stream begun before it, in one write.
	c.hold = false
	var w bytes.Buffer
	c.fr = http2.NewFramer(&w, nc)
	c.check(c.fr.WritePing(true, notice))
	c.call(3)
	c.fr = http2.NewFramer(nc, nc)
	_, err := nc.Write(w.Bytes())
	c.check(err)
	if status := c.readUntilEnd(3); status != "0" {
		t.Errorf("the stream written after the answer to the drain's PING: grpc-status %q, want it answered", status)
	}
	// The final GOAWAY may come after the stream's end (read fails the test if the
	// connection ends without one): read on until it does.
	for c.lastID == 0 {
		c.read()
	}
	if c.lastID < 3 {
		t.Errorf("final GOAWAY: last stream id %d, want 3, the stream taken", c.lastID)
	}
	nc.Close()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the drain did not end")
	}
}

// rawH2 is an HTTP/2 client written frame by frame, for orders of frames a client library
// does not let a test choose.
type rawH2 struct {
	t      *testing.T
	nc     net.Conn
	fr     *http2.Framer
	dec    *hpack.Decoder
	status string // the grpc-status of the last header block read
	hold   bool   // PINGs read are not answered
	lastID uint32 // of the last GOAWAY read with a lower id than 2^31-1
}

// newRawH2 sends the connection preface and SETTINGS on nc.
func newRawH2(t *testing.T, nc net.Conn) *rawH2 {
	c := &rawH2{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == "grpc-status" {
			c.status = f.Value
		}
	})
	_, err := io.WriteString(nc, http2.ClientPreface)
	c.check(err)
	c.check(c.fr.WriteSettings())
	return c
}

func (c *rawH2) check(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// call writes a GetVersion call on stream id.
func (c *rawH2) call(id uint32) {
	c.t.Helper()
	c.headers(id, versionMethod)
	c.check(c.fr.WriteData(id, true, []byte{0, 0, 0, 0, 0}))
}

// headers writes the HEADERS of a gRPC call to path on stream id, for the Ingress host.
func (c *rawH2) headers(id uint32, path string) {
	c.t.Helper()
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", host}, {":path", path},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.check(c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hdr.Bytes(), EndHeaders: true}))
}

// read reads the next frame, answering PINGs unless held, decoding header blocks and
// noting GOAWAYs.
func (c *rawH2) read() http2.Frame {
	c.t.Helper()
	f, err := c.fr.ReadFrame()
	c.check(err)
	switch f := f.(type) {
	case *http2.PingFrame:
		if !f.IsAck() && !c.hold {
			c.check(c.fr.WritePing(true, f.Data))
		}
	case *http2.HeadersFrame:
		c.status = ""
		_, err := c.dec.Write(f.HeaderBlockFragment())
		c.check(err)
	case *http2.GoAwayFrame:
		if f.LastStreamID < 1<<31-1 {
			c.lastID = f.LastStreamID
		}
	}
	return f
}

// readUntilEnd reads until stream id ends and returns its grpc-status, "refused" when it
// was refused, or "reset" for another RST_STREAM.
func (c *rawH2) readUntilEnd(id uint32) string {
	c.t.Helper()
	for {
		switch f := c.read().(type) {
		case *http2.HeadersFrame:
			if f.StreamID == id && f.StreamEnded() {
				return c.status
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				if f.ErrCode == http2.ErrCodeRefusedStream {
					return "refused"
				}
				return "reset"
			}
		}
	}
}
