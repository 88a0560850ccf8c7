package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A client whose TLS handshake fails learns little: pymilvus says "illegal connection
// params or server unavailable" whatever went wrong. So the balancer says it, once per
// failure, at info: who, on which port, why, and what usually mends it; and counts it
// by reason for the metric milvus_lb_tls_handshake_failures_total.

// HandshakeFailureReasons are the reasons a handshake is counted under, a fixed set (the
// metric's label values). Their order is the handshakeReason constants'.
var HandshakeFailureReasons = [numReasons]string{
	"not_tls", "protocol_version", "no_shared_cipher", "no_application_protocol",
	"unknown_server_name", "no_server_name", "certificate_rejected", "client_certificate",
	"timeout", "client_closed", "other",
}

type handshakeReason int

const (
	reasonNotTLS              handshakeReason = iota // plaintext (or anything not TLS) on a TLS port
	reasonProtocolVersion                            // no TLS version in common
	reasonNoSharedCipher                             // no cipher suite, key exchange or signature in common
	reasonNoALPN                                     // no application protocol in common
	reasonUnknownServerName                          // the client's SNI is covered by no certificate
	reasonNoServerName                               // no SNI, and no certificate covers the address dialled
	reasonCertificateRejected                        // the client refused our certificate
	reasonClientCertificate                          // mutual TLS: no client certificate, or not verified
	reasonTimeout                                    // not done within the handshake timeout
	reasonClientClosed                               // the client left before its hello
	reasonOther
	numReasons

	nameOK handshakeReason = -1 // checkName: a certificate covers the name the client checks
)

// handshakeHints say what usually mends each reason, for the log line. The README's
// troubleshooting section says the same at length.
var handshakeHints = [numReasons]string{
	reasonNotTLS:              "the client sent plaintext to a TLS port: connect with TLS (pymilvus: secure=True or an https:// uri) or to an HTTP listener port",
	reasonProtocolVersion:     "no TLS version in common: the client's versions are not in the listener's ssl-policy",
	reasonNoSharedCipher:      "no cipher suite or key exchange in common: the client's are not in the listener's ssl-policy",
	reasonNoALPN:              "the client offered no application protocol milvus-lb speaks (h2, http/1.1)",
	reasonUnknownServerName:   "no certificate covers the server name the client asked for; it got the default certificate, which a client that checks names rejects: connect with a name the certificate covers (pymilvus: server_name=) or add a certificate for it",
	reasonNoServerName:        "the client sent no server name and no certificate covers the address it connected to; it got the default certificate, which a client that checks names rejects: pass the certificate's host name (pymilvus: server_name=)",
	reasonCertificateRejected: "the client does not accept the certificate: it does not trust its issuer (pymilvus: server_pem_path=), or the name it checks (server_name, else the address it dialled) is not in it, or it expired",
	reasonClientCertificate:   "mutual authentication: the client sent no certificate, or one the trust store does not verify",
	reasonTimeout:             "the client did not finish the handshake within --handshake-timeout",
	reasonClientClosed:        "the client closed the connection before saying hello (a port probe, or a client giving up)",
}

// handshakeLogEvery is how often, at most, one reason is logged; the failures in between
// are counted in the next line's "suppressed", so a flood cannot fill the log.
const handshakeLogEvery = 10 * time.Second

// handshakes counts failed handshakes by reason and limits their log lines. The zero
// value is ready; all methods may be called concurrently.
type handshakes struct {
	counts [numReasons]atomic.Int64

	mu         sync.Mutex
	lastLog    [numReasons]time.Time
	suppressed [numReasons]int
}

// Counts returns the failures so far, by reason name.
func (h *handshakes) Counts() map[string]int64 {
	out := make(map[string]int64, numReasons)
	for r, name := range HandshakeFailureReasons {
		out[name] = h.counts[r].Load()
	}
	return out
}

// allow reports whether a line for r may be logged now, and how many were not since the
// last one.
func (h *handshakes) allow(r handshakeReason, now time.Time) (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastLog[r].IsZero() && now.Sub(h.lastLog[r]) < handshakeLogEvery {
		h.suppressed[r]++
		return false, 0
	}
	n := h.suppressed[r]
	h.lastLog[r], h.suppressed[r] = now, 0
	return true, n
}

// handshake runs the server side of a TLS handshake on nc with cfg (a listener's
// configuration, whose GetConfigForClient picks the port's certificates). A failure is
// counted, logged and returned; the caller closes nc. A handshake that succeeds although
// no certificate covers the name the client will check is counted and logged too: gRPC
// clients check the name only after the handshake and then just close the connection.
func (m *Manager) handshake(nc net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	tc := tls.Server(nc, cfg)
	err := tc.Handshake()
	st := tc.ConnectionState()
	nameProblem := nameOK
	if st.Version != 0 {
		nameProblem = checkName(cfg, st.ServerName, nc.LocalAddr())
	}
	if err == nil {
		if nameProblem != nameOK {
			m.handshakeProblem(nc, nameProblem, st.ServerName, nil)
		}
		return tc, nil
	}
	r := classifyHandshake(err, st.Version != 0, nameProblem)
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
		// What net/http answers too: curl http://host:443/ then says what is wrong.
		_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
	}
	m.handshakeProblem(nc, r, st.ServerName, err)
	return nil, err
}

// handshakeProblem counts and logs one problem; a client that left before its hello
// (port scanners, TCP health checks) is logged at debug only.
func (m *Manager) handshakeProblem(nc net.Conn, r handshakeReason, serverName string, err error) {
	m.handshakes.counts[r].Add(1)
	lvl := slog.LevelInfo
	if r == reasonClientClosed {
		lvl = slog.LevelDebug
	}
	if !m.log.Enabled(context.Background(), lvl) {
		return
	}
	ok, suppressed := m.handshakes.allow(r, time.Now())
	if !ok {
		return
	}
	msg := "TLS handshake failed"
	if err == nil {
		msg = "TLS client got a certificate for another name"
	}
	attrs := []any{"client", addrString(nc.RemoteAddr()), "port", portOf(nc.LocalAddr()), "reason", HandshakeFailureReasons[r]}
	if serverName != "" {
		attrs = append(attrs, "server_name", serverName)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	if h := handshakeHints[r]; h != "" {
		attrs = append(attrs, "hint", h)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	m.log.Log(context.Background(), lvl, msg, attrs...)
}

// classifyHandshake maps a failed handshake's error to its reason. helloRead says the
// client's hello was read (a version was chosen); nameProblem is checkName's verdict.
func classifyHandshake(err error, helloRead bool, nameProblem handshakeReason) handshakeReason {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var op *net.OpError
	switch {
	case errors.As(err, &rh):
		return reasonNotTLS
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonTimeout
	case errors.As(err, &cv):
		return reasonClientCertificate // only the client's certificate is verified here
	case errors.As(err, &op) && op.Op == "remote error":
		return classifyAlert(op.Err.Error(), nameProblem)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		if !helloRead {
			return reasonClientClosed
		}
		// The client left after our certificate: gRPC's TLS (BoringSSL) closes without
		// an alert when it does not trust the certificate.
		return certificateReason(nameProblem)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "inappropriate protocol fallback"),
		strings.Contains(msg, "older than TLS 1.3"):
		return reasonProtocolVersion
	case strings.Contains(msg, "supported by both client and server"), strings.Contains(msg, "common signature"),
		strings.Contains(msg, "incompatible point formats"):
		return reasonNoSharedCipher
	case strings.Contains(msg, "application protocol"):
		return reasonNoALPN
	case strings.Contains(msg, "client certificate"), strings.Contains(msg, "provide a certificate"):
		return reasonClientCertificate
	}
	return reasonOther
}

// classifyAlert maps an alert the client sent (crypto/tls's text for it, "tls: bad
// certificate") to a reason.
func classifyAlert(alert string, nameProblem handshakeReason) handshakeReason {
	switch strings.TrimPrefix(alert, "tls: ") {
	case "bad certificate", "unsupported certificate", "revoked certificate", "expired certificate",
		"unknown certificate", "unknown certificate authority", "access denied", "certificate unobtainable":
		return certificateReason(nameProblem)
	case "unrecognized name":
		return reasonUnknownServerName
	case "protocol version not supported", "inappropriate fallback":
		return reasonProtocolVersion
	case "insufficient security level":
		return reasonNoSharedCipher
	case "no application protocol":
		return reasonNoALPN
	}
	return reasonOther
}

// certificateReason: a client that rejects our certificate most often does so because
// no certificate covers the name it checks; else it does not trust the issuer.
func certificateReason(nameProblem handshakeReason) handshakeReason {
	if nameProblem != nameOK {
		return nameProblem
	}
	return reasonCertificateRejected
}

// checkName returns reasonUnknownServerName when no certificate cfg would serve covers
// the client's server name, reasonNoServerName when the client sent none and no
// certificate covers the address it connected to (local: what a client checks then), and
// nameOK when a certificate fits.
func checkName(cfg *tls.Config, serverName string, local net.Addr) handshakeReason {
	if cfg.GetConfigForClient != nil {
		c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{ServerName: serverName})
		if err != nil || c == nil {
			return nameOK // nothing was served; the handshake failed for that
		}
		cfg = c
	}
	name, problem := serverName, reasonUnknownServerName
	if name == "" {
		ta, ok := local.(*net.TCPAddr)
		if !ok {
			return nameOK
		}
		name, problem = ta.IP.String(), reasonNoServerName
	}
	for _, cert := range cfg.Certificates {
		leaf := cert.Leaf
		if leaf == nil && len(cert.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		if leaf != nil && leaf.VerifyHostname(name) == nil {
			return nameOK
		}
	}
	return problem
}

// looksLikeHTTP reports whether a connection's first bytes begin an HTTP/1 request (an
// h2c client would not understand an HTTP/1 answer, so its preface gets none).
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"} { // net/http's list
		if bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func portOf(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
