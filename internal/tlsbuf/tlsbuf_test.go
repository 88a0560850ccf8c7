package tlsbuf

import (
	"crypto/tls"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
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
func pair(t *testing.T) (srv, cli *tls.Conn) { return loopback(t, nil, &tls.Config{}) }

// loopback is pair with the server's socket wrapped by wrap, if set, and the client's
// configuration cfg (its trust and server name set here).
func loopback(t *testing.T, wrap func(net.Conn) net.Conn, cfg *tls.Config) (srv, cli *tls.Conn) {
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
		if wrap != nil {
			nc = wrap(nc)
		}
		sc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
		_ = sc.Handshake()
		done <- sc
	}()
	cfg.RootCAs, cfg.ServerName = ca.Pool(), "localhost"
	cli, err = tls.Dial("tcp", ln.Addr().String(), cfg)
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

// reviewedFields are tls.Conn's fields, and its halfConn's, in the Go release whose
// crypto/tls was read for this package (go1.26: conn.go's Read, readRecordOrCCS,
// readFromUntil, handlePostHandshakeMessage and handleKeyUpdate touch rawInput, input and
// hand only with in locked, and nothing but input points into rawInput's bytes).
const reviewedFields = "conn isClient handshakeFn quic isHandshakeComplete handshakeMutex " +
	"handshakeErr vers haveVers config handshakes extMasterSecret didResume didHRR " +
	"cipherSuite curveID peerSigAlg ocspResponse scts peerCertificates verifiedChains " +
	"serverName secureRenegotiation ekm resumptionSecret echAccepted ticketKeys " +
	"clientFinishedIsFirst closeNotifyErr closeNotifySent clientFinished serverFinished " +
	"clientProtocol in out rawInput input hand buffering sendBuf bytesSent packetsSent " +
	"retryCount activeCall tmp | Mutex err version cipher mac seq scratchBuf nextCipher " +
	"nextMac level trafficSecret"

// TestLayoutReviewed: Supported checks the four fields' names and types, not what
// crypto/tls does with them; a release that adds a field (another view into the record
// buffer, say) keeps Supported true. This fails on any change to tls.Conn's fields, so
// that crypto/tls is read again before reviewedFields is updated.
func TestLayoutReviewed(t *testing.T) {
	var names []string
	ct := reflect.TypeFor[tls.Conn]()
	for i := range ct.NumField() {
		names = append(names, ct.Field(i).Name)
	}
	names = append(names, "|")
	in, _ := ct.FieldByName("in")
	for i := range in.Type.NumField() {
		names = append(names, in.Type.Field(i).Name)
	}
	if got := strings.Join(names, " "); got != reviewedFields {
		t.Fatalf("crypto/tls.Conn's fields changed since tlsbuf was reviewed (%s):\n got %s\nwant %s\n"+
			"read crypto/tls's conn.go again (who touches rawInput, input, hand; what points into rawInput), then update reviewedFields",
			runtime.Version(), got, reviewedFields)
	}
}
