package rest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// Transports are the round trippers REST calls take to backends: HTTP/1.1, as Milvus
// serves REST on its gRPC port only to HTTP/1.1 clients (cmux sends every HTTP/2
// connection to the gRPC server), and HTTP/2 for a backend whose Ingress says
// backend-protocol-version HTTP2. They are shared by all snapshots so that a reload keeps
// the pooled connections. Safe for concurrent use.
type Transports struct {
	h1    *http.Transport  // plaintext or TLS by URL scheme
	h2c   *http2.Transport // HTTP/2 with prior knowledge
	h2tls *http2.Transport
}

// NewTransports returns the REST transports.
func NewTransports() *Transports {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	// Backend certificates are not verified, as the ALB does not verify its targets'
	// certificates: inside the cluster they are usually self-signed, and the pod IP is
	// not a name any certificate carries.
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see above
	h2 := func(plain bool) *http2.Transport {
		cfg := insecure.Clone()
		cfg.NextProtos = []string{"h2"}
		return &http2.Transport{
			AllowHTTP:       plain,
			TLSClientConfig: cfg,
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
			DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				if plain {
					return dialer.DialContext(ctx, network, addr)
				}
				return (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
			},
		}
	}
	h1 := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     insecure.Clone(),
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &Transports{h1: h1, h2c: h2(true), h2tls: h2(false)}
}

// For returns the transport and URL scheme for a call to a backend.
func (t *Transports) For(h2, useTLS bool) (http.RoundTripper, string) {
	switch {
	case h2 && useTLS:
		return t.h2tls, "https"
	case h2:
		return t.h2c, "http"
	case useTLS:
		return t.h1, "https"
	default:
		return t.h1, "http"
	}
}

// Close drops idle backend connections.
func (t *Transports) Close() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
	t.h2tls.CloseIdleConnections()
}
