package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// Pool keeps the relay's HTTP/2 connections to backend endpoints: calls to an
// endpoint share its connections, as many streams on each as the backend allows. Safe
// for concurrent use.
type Pool struct {
	dialer *net.Dialer
	tlsCfg *tls.Config

	// idleTimeout closes a connection that has had no stream and read nothing for so
	// long (see sweep).
	idleTimeout time.Duration

	mu       sync.Mutex
	conns    map[poolKey][]*h2conn
	dialing  map[poolKey]*pendingDial
	closed   bool
	sweeping bool
}

type poolKey struct {
	addr string
	tls  bool
}

// pendingDial is a dial in progress; calls that need the endpoint meanwhile wait for it.
type pendingDial struct {
	done chan struct{}
	c    *h2conn
	err  error
}

// maxStreamsPerBackendConn caps the streams of one backend connection even when the
// backend allows more (grpc-go allows any number): past it a second connection spreads
// the load over two sockets.
const maxStreamsPerBackendConn = 256

// maxConnsPerEndpoint bounds the connections to one endpoint opened to spread uploads
// (see ready); more open only when every connection has maxStreamsPerBackendConn streams.
const maxConnsPerEndpoint = 4

// idleTimeout is how long an unused backend connection is kept, as net/http's
// IdleConnTimeout for the REST transport: the connections opened to spread a burst of
// inserts, and those to endpoints no longer in the configuration, do not stay for ever.
const idleTimeout = 90 * time.Second

// NewPool returns an empty pool. Backend certificates are not verified, as the ALB does
// not verify its targets' certificates: inside the cluster they are usually self-signed,
// and the pod IP is not a name any certificate carries.
func NewPool() *Pool {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tlsCfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // see above
	return &Pool{dialer: dialer, tlsCfg: tlsCfg, idleTimeout: idleTimeout,
		conns: map[poolKey][]*h2conn{}, dialing: map[poolKey]*pendingDial{}}
}

// sweep runs while the pool has connections: every idleTimeout/4 it closes those without
// streams that have read nothing for idleTimeout. A connection it takes is marked
// goAway first, so no stream opens on it meanwhile (a call that picked it dials anew).
func (p *Pool) sweep() {
	tick := time.NewTicker(p.idleTimeout / 4)
	defer tick.Stop()
	for range tick.C {
		cutoff := time.Now().Add(-p.idleTimeout).UnixNano()
		var idle []*h2conn
		p.mu.Lock()
		for key, cs := range p.conns {
			kept := cs[:0]
			for _, c := range cs {
				c.mu.Lock()
				unused := len(c.streams) == 0 && c.lastRead.Load() < cutoff
				if unused {
					c.goAway = true
				}
				c.mu.Unlock()
				if unused {
					idle = append(idle, c)
				} else {
					kept = append(kept, c)
				}
			}
			clear(cs[len(kept):])
			if len(kept) == 0 {
				delete(p.conns, key)
			} else {
				p.conns[key] = kept
			}
		}
		stop := p.closed || len(p.conns) == 0
		if stop {
			p.sweeping = false
		}
		p.mu.Unlock()
		for _, c := range idle {
			_ = c.nc.Close() // its reader ends it
		}
		if stop {
			return
		}
	}
}

// ready returns a connection to key with room for one more stream, or nil. Calls fill
// the first connection with fewer than spreadStreams streams in flight and no upload in
// progress (noteUploadLocked): at a few calls at a time they all share one, which batches
// them into few writes for both sides. Past that, the one with the fewest uploads, then
// the fewest streams, and another is opened in the background for the calls after this
// one, up to maxConnsPerEndpoint: a backend reads each connection on one goroutine and
// under one connection window, so one connection serializes its reading of every call
// (see spreadStreams) and of every upload (inserts of megabytes: +11% messages/s, -8%
// balancer CPU per message in paired rounds of 3 MiB inserts from 8 callers; 8
// connections instead of 4 gave nothing more).
func (p *Pool) ready(key poolKey) *h2conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.conns[key]
	best, load := -1, int64(0)
	for i, c := range cs {
		if l := connLoad(c); best < 0 || l < load {
			best, load = i, l
			if l == 0 {
				break
			}
		}
	}
	var c *h2conn
	if best >= 0 && cs[best].hasRoom() {
		c = cs[best]
	} else if c = withRoom(cs); c == nil {
		return nil
	} else {
		// The least loaded had no room (closing, going away, or at its peer's stream
		// limit): whether to dial another is for the one taken.
		load = connLoad(c)
	}
	if load > 0 && len(cs) < maxConnsPerEndpoint && p.dialing[key] == nil && !p.closed {
		p.startDialLocked(key)
	}
	return c
}

// spreadStreams is how many streams in flight a backend connection takes before calls
// go to another. grpc-go, as Milvus serves, reads a connection's frames, decodes its
// header blocks and starts its calls on one goroutine, so one connection serializes the
// backend's reading of every call; each connection more, though, means fewer calls in
// each of the balancer's reads and writes. At 8, 32 Searches in flight went over four
// connections: calls/s 1.02x and 1.05x against one, on a machine where the backend spent
// 28 us a call, but on a faster one (16 us) the balancer's CPU per call 1.05x-1.06x at
// the same calls/s. At 16 (two connections) against 8, paired: the balancer's CPU per
// call 0.95x and 0.99x, calls/s 1.00x and 1.02x, the backend's 0.97x-0.98x; against
// one connection, calls/s 1.03x at the same CPU (docs/benchmarks.md, "Search over more
// backend connections" and "Two backend connections for 32 Searches").
const spreadStreams = 16

// connLoad orders backend connections for a new call: 0 for one that has fewer than
// spreadStreams streams and no upload, else its uploads first and then its streams. Read
// without c.mu, so it may be a call or two behind.
func connLoad(c *h2conn) int64 {
	up, n := int64(c.uploading.Load()), int64(c.inFlight.Load())
	if up == 0 && n < spreadStreams {
		return 0
	}
	return up<<32 | n
}

// withRoom returns the first connection of cs with room for a stream, or nil.
func withRoom(cs []*h2conn) *h2conn {
	for _, c := range cs {
		if c.hasRoom() {
			return c
		}
	}
	return nil
}

// get returns a connection to key, dialing one if none has room. It blocks for the dial.
func (p *Pool) get(ctx context.Context, key poolKey) (*h2conn, error) {
	for {
		if c := p.ready(key); c != nil {
			return c, nil
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("backend connections are closed")
		}
		d := p.dialing[key]
		if d == nil {
			d = p.startDialLocked(key)
		}
		p.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
			if c := d.c; c != nil && c.hasRoom() {
				return c, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startDialLocked dials key in the background; calls that need the connection wait for
// its done. Not tied to the call that asked: a call that ends meanwhile leaves a
// connection the next ones use. p.mu held.
func (p *Pool) startDialLocked(key poolKey) *pendingDial {
	d := &pendingDial{done: make(chan struct{})}
	p.dialing[key] = d
	go func() {
		c, err := p.dial(context.Background(), key)
		p.mu.Lock()
		delete(p.dialing, key)
		if err == nil {
			if p.closed {
				_ = c.nc.Close()
				c, err = nil, errors.New("backend connections are closed")
			} else {
				p.conns[key] = append(p.conns[key], c)
				if !p.sweeping {
					p.sweeping = true
					go p.sweep()
				}
			}
		}
		d.c, d.err = c, err
		p.mu.Unlock()
		close(d.done)
	}()
	return d
}

// hasRoom reports whether c can take one more stream.
func (c *h2conn) hasRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && !c.goAway && c.werr == nil && uint32(len(c.streams)) < min(c.peerMaxStr, maxStreamsPerBackendConn)
}

func (p *Pool) remove(c *h2conn, key poolKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.conns[key]
	for i, x := range cs {
		if x == c {
			p.conns[key] = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(p.conns[key]) == 0 {
		delete(p.conns, key)
	}
}

// dial opens a connection, sends the preface and settings, and starts its reader.
func (p *Pool) dial(ctx context.Context, key poolKey) (*h2conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	raw, err := p.dialer.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return nil, err
	}
	var nc net.Conn = sock.New(raw)
	if key.tls {
		tc := tls.Client(nc, p.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", key.addr, err)
		}
		if proto := tc.ConnectionState().NegotiatedProtocol; proto != "h2" {
			tc.Close()
			return nil, fmt.Errorf("backend %s does not speak HTTP/2 over TLS (ALPN %q)", key.addr, proto)
		}
		nc = tc
	}
	c := newH2conn(nc, false, 64<<10, relayBackendConnWindow, backendWriteTimeout)
	c.name = "backend"
	c.mu.Lock()
	c.wbuf = append(c.wbuf, http2.ClientPreface...)
	c.queued += len(http2.ClientPreface)
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: backendStreamWindow},
	)
	_ = c.fr.WriteWindowUpdate(0, uint32(relayBackendConnWindow-initialWindow))
	c.mu.Unlock()
	c.flush(true)
	c.mu.Lock()
	err = c.werr
	c.mu.Unlock()
	if err != nil {
		nc.Close()
		return nil, err
	}
	go p.readLoop(c, key)
	return c, nil
}

// backendWriteTimeout closes a backend connection whose socket has taken nothing for
// this long: the endpoint is wedged, and its calls fail as UNAVAILABLE.
const backendWriteTimeout = time.Minute

// readLoop reads the frames of a backend connection until it fails.
func (p *Pool) readLoop(c *h2conn, key poolKey) {
	b := &c.rb
	heard := false
	err := func() error {
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				return err
			}
			heard = true
			c.frameRead()
			// What the frame produced is flushed before the next read from the socket.
			if err := c.backendFrame(f, b); err != nil {
				return err
			}
		}
	}()
	b.flush()
	p.remove(c, key)
	// The relay writes its calls right after its preface, without waiting for the
	// server's (RFC 9113 §3.4 allows it; grpc-go waits). A server's first frame is its
	// SETTINGS, which servers write as they accept the connection, before they read
	// from it: a connection that ended before that frame came was never read. It is the
	// one a stopping server resets from its accept queue when it closes its listening
	// socket, and its calls, writes too, can go elsewhere.
	stage := call.BeforeReply
	if !heard {
		stage = call.NotSent
	}
	streams, _ := c.markClosed(err)
	for _, s := range streams {
		s.backendGone(c, err, stage)
	}
}

// Close closes the idle backend connections and keeps new ones from being pooled; those
// with calls in flight close when their calls end.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	var all []*h2conn
	for _, cs := range p.conns {
		all = append(all, cs...)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.mu.Lock()
		idle := len(c.streams) == 0
		c.mu.Unlock()
		if idle {
			_ = c.nc.Close()
		}
	}
}
