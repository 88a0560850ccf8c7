package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/relay"
)

// HTTP/2 connections go to the relay (internal/relay), which forwards gRPC calls frame by
// frame; everything else, HTTP/1.1 above all, goes to net/http. The choice is made once per connection, by ALPN after the TLS handshake or,
// in plaintext, by the first bytes: the HTTP/2 preface or not.

// dispatcher accepts the connections of one port, finishes their TLS handshake, and
// hands each to the relay or, through Accept, to net/http.
type dispatcher struct {
	base   net.Listener
	tlsCfg *tls.Config // nil for plaintext
	m      *Manager
	relay  Handler

	http      chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	runDone   chan struct{} // closed when run returns: no connection is accepted after
	// late serves, with net/http, an HTTP/1.1 connection accepted before the drain whose
	// handshake ended after net/http stopped accepting (late.go).
	late func(net.Conn)

	mu sync.Mutex
	// pending are the accepted connections not handed on yet (in their handshake), conns
	// the relayed ones; wg counts both, and the late HTTP/1.1 ones, for the drain.
	pending map[net.Conn]struct{}
	conns   map[*relay.Conn]struct{}
	wg      sync.WaitGroup
	closed  bool
}

func newDispatcher(base net.Listener, tlsCfg *tls.Config, m *Manager, r Handler) *dispatcher {
	return &dispatcher{base: base, tlsCfg: tlsCfg, m: m, relay: r,
		http: make(chan net.Conn), done: make(chan struct{}), runDone: make(chan struct{}),
		pending: map[net.Conn]struct{}{}, conns: map[*relay.Conn]struct{}{}}
}

// Accept returns the next connection for net/http.
func (d *dispatcher) Accept() (net.Conn, error) {
	select {
	case c := <-d.http:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed on stay open.
func (d *dispatcher) Close() error {
	var err error
	d.closeOnce.Do(func() {
		err = d.base.Close()
		close(d.done)
	})
	return err
}

func (d *dispatcher) Addr() net.Addr { return d.base.Addr() }

// run accepts until the listener closes. A connection accepted is served even when the
// drain begins during its handshake: its client's first call is answered before it is
// told to go (the drain waits for it).
func (d *dispatcher) run() {
	defer close(d.runDone)
	for {
		nc, err := d.base.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.m.log.Error("accept failed", "addr", d.base.Addr().String(), "error", err)
			}
			_ = d.Close()
			return
		}
		d.mu.Lock()
		d.pending[nc] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go func() {
			defer func() {
				d.mu.Lock()
				delete(d.pending, nc)
				d.mu.Unlock()
				d.wg.Done()
			}()
			d.route(nc)
		}()
	}
}

// route decides where nc goes: after the TLS handshake (or the first bytes, in
// plaintext), HTTP/2 to the relay and anything else to net/http.
func (d *dispatcher) route(nc net.Conn) {
	t := tracked(nc)
	limit := d.m.opts.HandshakeTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	_ = nc.SetReadDeadline(time.Now().Add(limit))
	nc, h2, ok := d.handshake(nc)
	if !ok {
		_ = nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	if !h2 {
		select {
		case d.http <- nc:
		case <-d.done:
			d.late(nc)
		}
		return
	}
	d.serveH2(nc, d.relayOptions(t, limit))
}

// handshake finishes TLS (the protocol is then ALPN's) or, in plaintext, reads enough to
// tell the HTTP/2 preface. It returns the connection to serve, with any bytes read put
// back; ok is false when the connection is to be closed.
func (d *dispatcher) handshake(nc net.Conn) (out net.Conn, h2, ok bool) {
	if d.tlsCfg != nil {
		tc, err := d.m.handshake(nc, d.tlsCfg) // logs and counts a failure (handshake.go)
		if err != nil {
			return nc, false, false
		}
		return tc, tc.ConnectionState().NegotiatedProtocol == "h2", true
	}
	var first [4]byte
	n, err := io.ReadFull(nc, first[:])
	if err != nil && n == 0 {
		return nc, false, false
	}
	h2 = relay.IsH2Preface(first[:n]) && n == len(first)
	return &prefixConn{Conn: nc, prefix: first[:n]}, h2, true
}

// relayOptions are the relay's limits for a connection, with the hooks of the
// connection limits (idle timeout, rapid-reset guard) when t tracks it.
func (d *dispatcher) relayOptions(t *trackedConn, limit time.Duration) relay.Options {
	o := relay.Options{
		MaxConcurrentStreams: d.m.opts.MaxConcurrentStreams,
		MaxHeaderBytes:       d.m.opts.MaxHeaderBytes,
		HandshakeTimeout:     limit,
		PingInterval:         d.m.opts.PingInterval,
		PingTimeout:          d.m.opts.PingTimeout,
		WriteTimeout:         d.m.opts.WriteByteTimeout,
		CountError:           d.m.conns.countHTTP2Error,
	}
	if t != nil {
		o.OnActive = func(active bool) {
			t.active.Store(active)
			if !active {
				t.lastActive.Store(time.Now().UnixNano())
			}
		}
		o.OnStreamEnd = func(early bool) bool {
			if t.streamEnded(early) {
				d.m.conns.resetKill.Add(1)
				return true
			}
			return false
		}
	}
	return o
}

// serveH2 hands an HTTP/2 connection to the relay and tracks it for the drain.
func (d *dispatcher) serveH2(nc net.Conn, o relay.Options) {
	hc := d.relay.NewConn(nc, o)
	d.mu.Lock()
	// Counted before route's own count ends, so the drain's Wait sees it.
	d.conns[hc] = struct{}{}
	d.wg.Add(1)
	draining := d.closed
	d.mu.Unlock()
	if draining {
		// Accepted before the drain: served, and told to go after its first call.
		hc.Shutdown()
	}
	// Serve on a new goroutine: this one's stack grew for the TLS handshake, and an idle
	// connection's reader should not keep that for hours (10,000 idle clients are a
	// workload milvus-lb must hold in little memory). Serve returns when the connection
	// parks too, with no goroutine left on it: the connection is counted until ended.
	go hc.Serve(func() {
		d.mu.Lock()
		delete(d.conns, hc)
		d.mu.Unlock()
		d.wg.Done()
	})
}

// shutdown sends GOAWAY on every relayed connection and waits until they end or ctx
// does; then it closes what is left.
func (d *dispatcher) shutdown(ctx context.Context) {
	_ = d.Close()
	<-d.runDone // every connection accepted is counted in wg now
	d.mu.Lock()
	d.closed = true
	conns := make([]*relay.Conn, 0, len(d.conns))
	for hc := range d.conns {
		conns = append(conns, hc)
	}
	d.mu.Unlock()
	for _, hc := range conns {
		hc.Shutdown()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.closeAll()
		<-done
	}
}

func (d *dispatcher) closeAll() {
	_ = d.Close()
	d.mu.Lock()
	d.closed = true
	for hc := range d.conns {
		hc.Close()
	}
	for nc := range d.pending {
		_ = nc.Close()
	}
	d.mu.Unlock()
}

// prefixConn replays the bytes read to recognise the protocol.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// NetConn is the connection under c (sock.Find looks through it).
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
