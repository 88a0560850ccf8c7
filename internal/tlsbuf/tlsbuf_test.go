package tlsbuf

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
)

// TestSupported: this Go release's tls.Conn has the fields Reclaim and Lend use. If an
// upgrade changes them, this fails (and the balancer keeps crypto/tls's buffers, as
// before: it touches nothing it did not find).
func TestSupported(t *testing.T) {
	if !Supported {
		t.Fatal("crypto/tls.Conn's rawInput, input, hand or in changed: tlsbuf is off")
	}
}

// pair is a TLS 1.3 connection over loopback, handshake done: the server's end and the
// client's.
func pair(t *testing.T) (srv, cli *tls.Conn) {
	t.Helper()
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "localhost")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan *tls.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		sc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
		_ = sc.Handshake()
		done <- sc
	}()
	cli, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	srv = <-done
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return srv, cli
}

// TestReclaimBetweenReads: between reads, a connection's buffers are taken back (the
// handshake's too) and the next read, with a lent buffer, gets the client's bytes
// whole; a connection whose buffer still holds plaintext not yet read keeps it.
func TestReclaimBetweenReads(t *testing.T) {
	srv, cli := pair(t)
	read := func(want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(srv, got); err != nil || string(got) != want {
			t.Fatalf("read %q (%v), want %q", got, err, want)
		}
	}
	if _, err := cli.Write([]byte("first call")); err != nil {
		t.Fatal(err)
	}
	read("first call")
	if !Reclaim(srv) {
		t.Fatal("an idle connection's record buffer was not taken back")
	}
	if f := of(srv); f.rawInput.Cap() != 0 || f.hand.Cap() != 0 {
		t.Fatalf("after Reclaim the record buffer has %d bytes of room, the handshake buffer %d: want none", f.rawInput.Cap(), f.hand.Cap())
	}
	Lend(srv)
	if f := of(srv); f.rawInput.Cap() < size {
		t.Fatalf("lent buffer of %d bytes, want %d", f.rawInput.Cap(), size)
	}
	if _, err := cli.Write([]byte("second call, after parking")); err != nil {
		t.Fatal(err)
	}
	read("second")
	if Reclaim(srv) {
		t.Fatal("took back a buffer that still held plaintext not yet read")
	}
	read(" call, after parking")
	// A record larger than the lent buffer grows it, as crypto/tls would its own; Reclaim
	// lets the grown one go.
	big := make([]byte, 100<<10)
	go func() { _, _ = cli.Write(big) }()
	if _, err := io.ReadFull(srv, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	if !Reclaim(srv) {
		t.Fatal("the grown buffer was not taken back")
	}
}
