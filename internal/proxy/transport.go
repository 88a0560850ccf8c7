package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// Transports holds the round trippers to backends. They are shared by all snapshots so
// that a configuration reload keeps the pooled backend connections. Safe for concurrent
// use.
type Transports struct {
	h2c   *http2.Transport // gRPC to a plaintext Milvus: HTTP/2 with prior knowledge
	h2tls *http2.Transport // gRPC to a TLS Milvus (backend-protocol: HTTPS)
	h1    *http.Transport  // REST (HTTP/1.1), plaintext or TLS by URL scheme
	relay *relayPool       // gRPC relayed frame by frame (H2Conn)
}

// NewTransports returns the backend transports.
func NewTransports() *Transports {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	// Backend certificates are not verified, as the ALB does not verify its targets'
	// certificates: inside the cluster they are usually self-signed, and the pod IP is
	// not a name any certificate carries.
	insecure := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // see above
	h2 := func(plain bool) *http2.Transport {
		t := &http2.Transport{
			AllowHTTP:       plain,
			TLSClientConfig: insecure,
			// Milvus enforces a 5 s minimum between client pings (keepalive
			// EnforcementPolicy MinTime); 30 s of silence before a ping stays clear of it.
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
			// Large frames cut per-frame overhead on 64 MiB inserts and big results.
			MaxReadFrameSize: 1 << 20,
		}
		if plain {
			t.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			}
		} else {
			t.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				return (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
			}
		}
		return t
	}
	h1 := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     insecure.Clone(),
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &Transports{h2c: h2(true), h2tls: h2(false), h1: h1, relay: newRelayPool(dialer, insecure.Clone())}
}

// For returns the transport and URL scheme for a request to a backend.
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
	t.h2c.CloseIdleConnections()
	t.h2tls.CloseIdleConnections()
	t.h1.CloseIdleConnections()
	t.relay.close()
}
