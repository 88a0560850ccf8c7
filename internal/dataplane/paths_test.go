package dataplane_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/metadata"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// backend-protocol-version HTTP2 (rather than the guide's GRPC) changes nothing for gRPC:
// gRPC calls take the relay to the backend over HTTP/2 either way, TLS and h2c alike.
func TestGRPCWithBackendProtocolHTTP2(t *testing.T) {
	bs := startBackends(t, 2, fakemilvus.Options{})
	l := newLB(t, bs, map[string]string{"alb.ingress.kubernetes.io/backend-protocol-version": "HTTP2"})
	plain, _ := l.dial()
	for i, c := range []milvuspb.MilvusServiceClient{plain, l.dialTLS()} {
		ctx := metadata.AppendToOutgoingContext(ctxTimeout(t, 10*time.Second), "dbname", "db"+strconv.Itoa(i))
		if _, err := c.Search(ctx, searchReq(nil)); err != nil {
			t.Fatalf("client %d: Search through an HTTP2 backend: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for _, b := range bs {
		for _, c := range b.Calls() {
			seen[c.MD.Get("dbname")[0]] = true
		}
	}
	if !seen["db0"] || !seen["db1"] {
		t.Fatalf("backends saw the calls of databases %v, want db0 and db1", seen)
	}
}

// A REST call over HTTP/1.1 goes upstream by the same header rule as a gRPC call: the
// fields its Connection field names are dropped, X-Forwarded-* are the balancer's.
func TestRESTUpstreamHeaders(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{REST: true})
	l := newLB(t, bs, nil)
	nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(l.plain))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body := `{"dbName":"_default"}`
	_, err = nc.Write([]byte("POST /v2/vectordb/collections/list HTTP/1.1\r\nHost: " + host + "\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Connection: keep-alive, X-Secret\r\nX-Secret: hop\r\nX-Forwarded-For: 198.51.100.1\r\n" +
		"X-Forwarded-Proto: https\r\nAuthorization: Bearer root:Milvus\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST status %d", resp.StatusCode)
	}
	md := waitCall(t, bs[0], "POST /v2/vectordb/collections/list").MD
	for k, want := range map[string]string{
		"x-forwarded-for": "198.51.100.1, 127.0.0.1", "x-forwarded-proto": "http",
		"x-forwarded-port": strconv.Itoa(l.plain), "authorization": "Bearer root:Milvus",
	} {
		if got := md.Get(k); len(got) != 1 || got[0] != want {
			t.Errorf("backend saw %s %q, want %q", k, got, want)
		}
	}
	if got := md.Get("x-secret"); len(got) != 0 {
		t.Errorf("a field named by Connection reached the backend: x-secret %q", got)
	}
}

// Milvus serves REST on its gRPC port, milvus-lite does not: a REST call to a backend that
// speaks only gRPC gets 502 saying what went wrong, not 503 "unavailable" while the
// status page shows the backend healthy.
func TestRESTToABackendWithoutREST(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	// grpc-go greets with its SETTINGS frame and closes the connection on the HTTP/1.1
	// request line; the request bytes it never read make the kernel send a reset, which
	// now and then reaches milvus-lb before the greeting does (then the call is a 503:
	// the backend cut the connection, nothing says why). A user who tries again sees
	// the 502; so does this test, within a few tries, and never anything else.
	for try := 1; ; try++ {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(l.plain)+"/v2/vectordb/collections/list", strings.NewReader("{}"))
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusBadGateway && strings.Contains(string(body), "not HTTP/1.1"):
			return
		case resp.StatusCode != http.StatusServiceUnavailable || try == 10:
			t.Fatalf("REST to a gRPC-only backend, try %d: %d %q, want 502 saying it is not HTTP/1.1", try, resp.StatusCode, body)
		}
	}
}
