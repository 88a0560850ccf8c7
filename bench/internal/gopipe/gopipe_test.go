package gopipe

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

// TestPipeCarriesBothWaysAndTheEnd sends a request larger than the copy buffer through
// the pipe to a backend that replies with what it read, reversed, once the client's half
// close reaches it: the client must read exactly that, then the end.
func TestPipeCarriesBothWaysAndTheEnd(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		c, err := backend.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		got, _ := io.ReadAll(c) // until the pipe passes on the client's half close
		_, _ = c.Write(reversed(got))
	}()

	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", Config(cert))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- Serve(l, backend.Addr().String()) }()

	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A pipe that drops an end would leave both sides waiting: fail instead.
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "h2" || st.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %q, version %x; want h2 over TLS 1.3", st.NegotiatedProtocol, st.Version)
	}
	req := bytes.Repeat([]byte("0123456789abcdef"), 3*bufSize/16+5) // three buffers and a bit
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the reply: %v", err)
	}
	if !bytes.Equal(got, reversed(req)) {
		t.Errorf("reply of %d bytes is not the request's %d reversed", len(got), len(req))
	}

	l.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve after its listener closed: %v", err)
	}
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}
