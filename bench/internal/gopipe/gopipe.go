// Package gopipe is a TLS-terminating TCP pipe written in Go the plain way: crypto/tls,
// a goroutine copying each direction, a 64 KiB buffer each (HAProxy's tune.bufsize in
// the tls-pipe bound). It is a bound, not a balancer: it reads no HTTP/2 and sends every
// call of a client connection to one backend connection. Beside tls-pipe (HAProxy and
// OpenSSL) it shows what terminating TLS and copying cost a Go process on this machine,
// with milvus-lb's choice of threads (internal/threads), so that the gap between it and
// milvus-lb is milvus-lb's own work (docs/benchmarks.md, "A pipe in Go").
package gopipe

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
)

// bufSize is each direction's copy buffer.
const bufSize = 64 << 10

// Serve accepts TLS connections on l (its tls.Config decides the handshake) and pipes
// each to a new TCP connection to backend, until l is closed.
func Serve(l net.Listener, backend string) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go pipe(c, backend)
	}
}

// Config is the TLS the pipe offers: what milvus-lb negotiates under the bench's
// ssl-policy (TLS 1.3, X25519; Go's default would add the post-quantum hybrid, a larger
// handshake), ALPN h2, Go's defaults otherwise.
func Config(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:     []tls.Certificate{cert},
		NextProtos:       []string{"h2"},
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
}

// pipe copies both ways between the client c and a connection to backend until both
// directions end; a direction's end is passed on as a half close.
func pipe(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{})
	go func() {
		copyHalf(c, b)
		close(done)
	}()
	copyHalf(b, c)
	<-done
}

// copyHalf copies src to dst until src ends or either fails, then closes dst for
// writing (a failed write closes it whole, so that the other direction ends too).
func copyHalf(dst, src net.Conn) {
	// Wrapped so that io.CopyBuffer uses buf rather than a ReaderFrom or WriterTo of its
	// own choosing (a TCP connection's allocates 32 KiB each time).
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, bufSize))
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
	_ = src.Close()
}
