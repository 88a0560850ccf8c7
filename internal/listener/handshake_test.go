package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/certtest"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

const testHost = "milvus-demo.milvus.io"

// handshakeSetup is a CA, a server configuration for testHost as a listener builds it
// (GetConfigForClient returning the port's configuration) and a Manager logging to logs.
type handshakeSetup struct {
	ca   *certtest.CA
	port *tls.Config // the port's configuration, which tests may change
	base *tls.Config
	m    *Manager
	logs *testenv.LogBuffer
}

func newHandshakeSetup(t *testing.T) *handshakeSetup {
	ca := certtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, testHost)
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &handshakeSetup{ca: ca, logs: &testenv.LogBuffer{}}
	s.port = &tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	s.base = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.port, nil }}
	s.m = NewManager(DefaultOptions(), nil, nil, slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return s
}

// run accepts one loopback connection, runs the server handshake on it with a deadline
// as the dispatcher sets one, and gives the client side to client. It returns the
// server's handshake error.
func (s *handshakeSetup) run(t *testing.T, deadline time.Duration, client func(net.Conn)) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(deadline))
		_, err = s.m.handshake(nc, s.base)
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	client(c)
	err = <-done
	_ = c.Close()
	return err
}

// tlsClient runs a client handshake with cfg and closes.
func tlsClient(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		_ = tls.Client(c, cfg).Handshake()
		_ = c.Close()
	}
}

// silentRejecter closes the connection instead of sending an alert, as gRPC's TLS
// (BoringSSL) does when it does not trust the certificate.
type silentRejecter struct{ net.Conn }

func (c silentRejecter) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == 21 { // an alert record
		_ = c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func TestHandshakeFailureReasons(t *testing.T) {
	reject := errors.New("rejected by the test")
	for _, tc := range []struct {
		name    string
		setup   func(s *handshakeSetup)
		client  func(s *handshakeSetup) func(net.Conn)
		reason  string
		success bool   // the handshake itself succeeds (and the problem is still counted)
		debug   bool   // logged at debug, not info
		log     string // a piece of the log line
	}{
		{
			name: "plaintext HTTP/1.1 on a TLS port",
			client: func(*handshakeSetup) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
					b, _ := io.ReadAll(c)
					if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") {
						t.Errorf("plaintext HTTP client got %q, want a 400 saying it spoke HTTP to HTTPS", b)
					}
				}
			},
			reason: "not_tls", log: "first record does not look like a TLS handshake",
		},
		{
			name: "h2c prior knowledge on a TLS port",
			client: func(*handshakeSetup) func(net.Conn) {
				return func(c net.Conn) { _, _ = io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") }
			},
			reason: "not_tls",
		},
		{
			name: "TLS version not in the policy",
			client: func(s *handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: testHost, RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			},
			reason: "protocol_version", log: "client offered only unsupported versions",
		},
		{
			name: "no cipher suite in common",
			setup: func(s *handshakeSetup) {
				s.port.MaxVersion = tls.VersionTLS12
				s.port.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
			},
			client: func(s *handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: testHost, RootCAs: s.ca.Pool(), MaxVersion: tls.VersionTLS12,
					CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}})
			},
			reason: "no_shared_cipher",
		},
		{
			name: "no application protocol in common",
			client: func(s *handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: testHost, RootCAs: s.ca.Pool(), NextProtos: []string{"grpc-exp"}})
			},
			reason: "no_application_protocol",
		},
		{
			name: "server name no certificate covers, client checks it",
			client: func(s *handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: "other.milvus.io", RootCAs: s.ca.Pool()})
			},
			reason: "unknown_server_name", log: "server_name=other.milvus.io",
		},
		{
			name: "server name no certificate covers, client checks it later",
			client: func(*handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: "other.milvus.io", InsecureSkipVerify: true})
			},
			reason: "unknown_server_name", success: true, log: "got a certificate for another name",
		},
		{
			name: "no server name and no certificate for the address, client checks it later",
			client: func(*handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{InsecureSkipVerify: true})
			},
			reason: "no_server_name", success: true, log: "got a certificate for another name",
		},
		{
			name: "no server name and no certificate for the address, client closes",
			client: func(*handshakeSetup) func(net.Conn) {
				return func(c net.Conn) {
					_ = tls.Client(silentRejecter{c}, &tls.Config{InsecureSkipVerify: true,
						VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return reject }}).Handshake()
				}
			},
			reason: "no_server_name",
		},
		{
			name: "client does not trust the issuer",
			client: func(*handshakeSetup) func(net.Conn) {
				return tlsClient(&tls.Config{ServerName: testHost}) // system roots only
			},
			reason: "certificate_rejected", log: "remote error: tls: bad certificate",
		},
		{
			name: "client does not trust the issuer and closes without an alert",
			client: func(*handshakeSetup) func(net.Conn) {
				return func(c net.Conn) {
					_ = tls.Client(silentRejecter{c}, &tls.Config{ServerName: testHost, InsecureSkipVerify: true,
						VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return reject }}).Handshake()
				}
			},
			reason: "certificate_rejected",
		},
		{
			name: "mutual TLS without a client certificate",
			setup: func(s *handshakeSetup) {
				s.port.ClientAuth = tls.RequireAndVerifyClientCert
				s.port.ClientCAs = s.ca.Pool()
			},
			client: func(s *handshakeSetup) func(net.Conn) {
				return func(c net.Conn) {
					tc := tls.Client(c, &tls.Config{ServerName: testHost, RootCAs: s.ca.Pool()})
					_ = tc.Handshake()
					_, _ = tc.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after
				}
			},
			reason: "client_certificate",
		},
		{
			name: "client closes before its hello",
			client: func(*handshakeSetup) func(net.Conn) {
				return func(c net.Conn) { _ = c.Close() }
			},
			reason: "client_closed", debug: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHandshakeSetup(t)
			if tc.setup != nil {
				tc.setup(s)
			}
			err := s.run(t, 10*time.Second, tc.client(s))
			if (err == nil) != tc.success {
				t.Fatalf("server handshake error = %v, want success %v", err, tc.success)
			}
			checkCounted(t, s.m, tc.reason)
			logs := s.logs.String()
			level := "level=INFO"
			if tc.debug {
				level = "level=DEBUG"
			}
			if !strings.Contains(logs, level) || !strings.Contains(logs, "reason="+tc.reason) ||
				!strings.Contains(logs, "client=127.0.0.1:") || !strings.Contains(logs, tc.log) {
				t.Errorf("log:\n%s\nwant a line at %s with reason=%s, the client address and %q", logs, level, tc.reason, tc.log)
			}
		})
	}
}

// A client that sends nothing is cut off at the dispatcher's deadline, and that is said.
func TestHandshakeTimeout(t *testing.T) {
	s := newHandshakeSetup(t)
	err := s.run(t, 50*time.Millisecond, func(c net.Conn) {
		_, _ = io.ReadAll(c) // until the server gives up and closes
	})
	if err == nil {
		t.Fatal("handshake succeeded with a silent client")
	}
	checkCounted(t, s.m, "timeout")
}

// checkCounted asserts that exactly one handshake problem was counted, under reason.
func checkCounted(t *testing.T, m *Manager, reason string) {
	t.Helper()
	counts := m.ConnStats().TLSHandshakeFailures
	if len(counts) != len(HandshakeFailureReasons) {
		t.Errorf("counts has %d reasons, want all %d: %v", len(counts), len(HandshakeFailureReasons), counts)
	}
	for r, n := range counts {
		want := int64(0)
		if r == reason {
			want = 1
		}
		if n != want {
			t.Errorf("count[%s] = %d, want %d (all: %v)", r, n, want, counts)
		}
	}
}

// A flood of failures is counted in full but logged once per reason per interval, the
// next line saying how many were left out.
func TestHandshakeLogRateLimit(t *testing.T) {
	var h handshakes
	t0 := time.Unix(1_000_000, 0)
	if ok, n := h.allow(reasonNotTLS, t0); !ok || n != 0 {
		t.Fatalf("first: allow = %v, %d", ok, n)
	}
	for i := range 3 {
		if ok, _ := h.allow(reasonNotTLS, t0.Add(time.Duration(i+1)*time.Second)); ok {
			t.Fatalf("a second line within %v was allowed", handshakeLogEvery)
		}
	}
	if ok, _ := h.allow(reasonTimeout, t0.Add(time.Second)); !ok {
		t.Error("another reason was held back by the first's limit")
	}
	if ok, n := h.allow(reasonNotTLS, t0.Add(handshakeLogEvery)); !ok || n != 3 {
		t.Errorf("after the interval: allow = %v, suppressed %d; want true, 3", ok, n)
	}
}
