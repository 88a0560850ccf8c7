package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/proxy"
)

// HTTP/2 connections go to the proxy's relay, which forwards gRPC calls frame by frame
// (see proxy/relay_conn.go for why); everything else, HTTP/1.1 above all, goes to
// net/http. The choice is made once per connection, by ALPN after the TLS handshake or,
// in plaintext, by the first bytes: the HTTP/2 preface or not.

// relayer is a port handler that also serves whole HTTP/2 connections (proxy.Handler).
type relayer interface {
	NewH2Conn(nc net.Conn, o proxy.H2Options) *proxy.H2Conn
}

// dispatcher accepts the connections of one port, finishes their TLS handshake, and
// hands each to the relay or, through Accept, to net/http.
type dispatcher struct {
	base   net.Listener
	tlsCfg *tls.Config // nil for plaintext
	m      *Manager
	relay  relayer

	http      chan net.Conn
	done      chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	conns  map[*proxy.H2Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

func newDispatcher(base net.Listener, tlsCfg *tls.Config, m *Manager, r relayer) *dispatcher {
	return &dispatcher{base: base, tlsCfg: tlsCfg, m: m, relay: r,
		http: make(chan net.Conn), done: make(chan struct{}), conns: map[*proxy.H2Conn]struct{}{}}
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

// run accepts until the listener closes.
func (d *dispatcher) run() {
	for {
		nc, err := d.base.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.m.log.Error("accept failed", "addr", d.base.Addr().String(), "error", err)
			}
			_ = d.Close()
			return
		}
		go d.route(nc)
	}
}

// route decides where nc goes.
func (d *dispatcher) route(nc net.Conn) {
	t := tracked(nc)
	limit := d.m.opts.HandshakeTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	_ = nc.SetReadDeadline(time.Now().Add(limit))
	h2 := false
	if d.tlsCfg != nil {
		tc, err := d.m.handshake(nc, d.tlsCfg)
		if err != nil {
			_ = nc.Close()
			return
		}
		h2 = tc.ConnectionState().NegotiatedProtocol == "h2"
		nc = tc
	} else {
		var first [4]byte
		n, err := io.ReadFull(nc, first[:])
		if err != nil && n == 0 {
			_ = nc.Close()
			return
		}
		h2 = proxy.IsH2Preface(first[:n]) && n == len(first)
		nc = &prefixConn{Conn: nc, prefix: first[:n]}
	}
	_ = nc.SetReadDeadline(time.Time{})
	if !h2 {
		select {
		case d.http <- nc:
		case <-d.done:
			_ = nc.Close()
		}
		return
	}
	o := proxy.H2Options{
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
	hc := d.relay.NewH2Conn(nc, o)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		_ = nc.Close()
		return
	}
	d.conns[hc] = struct{}{}
	d.wg.Add(1)
	d.mu.Unlock()
	// Serve on a new goroutine: this one's stack grew for the TLS handshake, and an idle
	// connection's reader should not keep that for hours (10,000 idle clients are a
	// workload milvus-lb must hold in little memory).
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.conns, hc)
			d.mu.Unlock()
			d.wg.Done()
		}()
		hc.Serve()
	}()
}

// shutdown sends GOAWAY on every relayed connection and waits until they end or ctx
// does; then it closes what is left.
func (d *dispatcher) shutdown(ctx context.Context) {
	_ = d.Close()
	d.mu.Lock()
	d.closed = true
	conns := make([]*proxy.H2Conn, 0, len(d.conns))
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
