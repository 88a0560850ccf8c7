package dataplane_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
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
