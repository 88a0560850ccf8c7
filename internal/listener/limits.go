package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// Connection-level limits: how many client connections may be open at once, when an idle
// one is closed, and when a connection that keeps abandoning its streams (HTTP/2 rapid
// reset, CVE-2023-44487) is closed. They sit under TLS, on the accepted TCP connection, so
// that they cost nothing per request and work the same for h2, h2c and HTTP/1.1.

// Premature resets: a stream the client cancels within prematureLifetime of its start is
// "premature". A connection whose streams are mostly premature resets is closed: after
// every resetWindow streams, if more than half of them were, the connection goes. This
// is Envoy's rule (premature_reset_total_stream_count = 500, min stream lifetime 1 s). It
// never fires for a client whose calls mostly complete; a client whose calls mostly time
// out in under a second may lose its connection, and gRPC clients then reconnect.
const (
	prematureLifetime = time.Second
	resetWindow       = 500
)

// ConnStats are counters of the connection limits, for metrics. All are cumulative
// except Open.
type ConnStats struct {
	Open        int64 // client connections open now
	Accepted    int64 // connections accepted
	Rejected    int64 // connections closed at once because MaxConnections were open
	IdleClosed  int64 // connections closed by IdleTimeout
	ResetClosed int64 // connections closed for premature stream resets (rapid reset)
	// HTTP2Errors counts HTTP/2 protocol errors and defences by Go's name for them
	// ("too_many_early_resets", "headers_too_large", "conn_close_lost_ping", ...).
	HTTP2Errors map[string]int64
	// TLSHandshakeFailures counts failed TLS handshakes by reason, every one of
	// HandshakeFailureReasons present.
	TLSHandshakeFailures map[string]int64
}

// conns tracks every accepted client connection of a Manager, across all its ports.
// All methods may be called concurrently.
type conns struct {
	max          int           // 0: no limit
	idle         time.Duration // 0: never close idle connections
	pingInterval time.Duration // the server's own keepalive pings, see trackedConn.Read
	log          *slog.Logger

	open                                      atomic.Int64
	accepted, rejected, idleClosed, resetKill atomic.Int64
	h2errs                                    sync.Map // string → *atomic.Int64
}

func newConns(o Options, log *slog.Logger) *conns {
	return &conns{max: o.MaxConnections, idle: o.IdleTimeout, pingInterval: o.PingInterval, log: log}
}

// Stats returns the connection counters.
func (c *conns) Stats() ConnStats {
	s := ConnStats{
		Open: c.open.Load(), Accepted: c.accepted.Load(), Rejected: c.rejected.Load(),
		IdleClosed: c.idleClosed.Load(), ResetClosed: c.resetKill.Load(),
		HTTP2Errors: map[string]int64{},
	}
	c.h2errs.Range(func(k, v any) bool {
		s.HTTP2Errors[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// countHTTP2Error is http.HTTP2Config.CountError.
func (c *conns) countHTTP2Error(kind string) {
	v, ok := c.h2errs.Load(kind)
	if !ok {
		v, _ = c.h2errs.LoadOrStore(kind, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// listener wraps the TCP listener of one port (under TLS, if any).
func (c *conns) listener(ln net.Listener) net.Listener { return &limitListener{Listener: ln, c: c} }

type limitListener struct {
	net.Listener
	c *conns
}

// Accept refuses connections beyond the limit by accepting and closing them at once:
// left in the kernel's backlog they would wait there and then time out, which tells a
// client less, later, and ties up the backlog for legitimate clients when the load drops.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := l.c
		if c.max > 0 && c.open.Load() >= int64(c.max) {
			c.rejected.Add(1)
			if tc, ok := nc.(*net.TCPConn); ok {
				// Reset rather than FIN: the client learns at once, and no TIME_WAIT
				// state is left behind on the balancer for a connection it never served.
				_ = tc.SetLinger(0)
			}
			_ = nc.Close()
			continue
		}
		c.open.Add(1)
		c.accepted.Add(1)
		// The socket layer gives the relay writes that never block (internal/sock).
		t := &trackedConn{Conn: sock.New(nc), c: c}
		now := time.Now().UnixNano()
		t.lastRead.Store(now)
		t.lastActive.Store(now)
		if c.idle > 0 {
			t.idleTimer = time.AfterFunc(c.idle, t.checkIdle)
		}
		return t, nil
	}
}

// trackedConn is one accepted client connection.
type trackedConn struct {
	net.Conn
	c *conns

	closeOnce sync.Once

	// Idle tracking. active is whether a request is in progress (from http.Server's
	// ConnState). lastActive is the last time the client showed it was using the
	// connection: a request ended, or it sent bytes on its own (a PING, a SETTINGS).
	active     atomic.Bool
	lastActive atomic.Int64 // unix nanoseconds
	lastRead   atomic.Int64
	wrote      atomic.Bool // the server wrote since the last read
	idleTimer  *time.Timer

	// Premature resets in the current window of resetWindow streams.
	mu             sync.Mutex
	streams, early int
}

// Read notes client activity for the idle timeout. Bytes the client sends on its own
// initiative count (pymilvus pings every 10 s with no call in flight, and must keep its
// connection); the answer to the server's own keepalive PING does not, or the server's
// pings would keep every connection forever. The server pings only after PingInterval of
// silence from the client, so a read that follows at least that much silence, with a
// server write in between, is taken for such an answer.
func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && t.c.idle > 0 {
		now := time.Now().UnixNano()
		last := t.lastRead.Swap(now)
		answer := t.c.pingInterval > 0 && t.wrote.Swap(false) && now-last >= int64(t.c.pingInterval)
		if !answer {
			t.lastActive.Store(now)
		}
	}
	return n, err
}

func (t *trackedConn) Write(p []byte) (int, error) {
	if t.c.idle > 0 && !t.wrote.Load() {
		t.wrote.Store(true)
	}
	return t.Conn.Write(p)
}

// NetConn is the connection under t (sock.Find looks through it).
func (t *trackedConn) NetConn() net.Conn { return t.Conn }

func (t *trackedConn) Close() error {
	err := t.Conn.Close()
	t.closeOnce.Do(func() {
		t.c.open.Add(-1)
		if t.idleTimer != nil {
			t.idleTimer.Stop()
		}
	})
	return err
}

// checkIdle runs when the idle timeout may have passed; it closes the connection if no
// request is in progress and the client has been silent for the whole timeout, and
// otherwise looks again when it next could have.
func (t *trackedConn) checkIdle() {
	idle := t.c.idle
	wait := idle
	if !t.active.Load() {
		since := time.Duration(time.Now().UnixNano() - t.lastActive.Load())
		if since >= idle {
			t.c.idleClosed.Add(1)
			t.c.log.Debug("closing idle connection", "remote", t.RemoteAddr().String(), "idle", since.Round(time.Second))
			_ = t.Close()
			return
		}
		wait = idle - since
	}
	t.idleTimer.Reset(wait)
}

// connState is http.Server.ConnState: it tells whether a request is in progress. For
// HTTP/2, Active means at least one stream is open and Idle that none is.
func (c *conns) connState(nc net.Conn, s http.ConnState) {
	t := tracked(nc)
	if t == nil {
		return
	}
	switch s {
	case http.StateActive:
		t.active.Store(true)
	case http.StateIdle:
		t.active.Store(false)
		t.lastActive.Store(time.Now().UnixNano())
	}
}

// tracked finds the trackedConn under what http.Server calls the connection: the
// accepted conn itself, or the *tls.Conn wrapped around it.
func tracked(nc net.Conn) *trackedConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	t, _ := nc.(*trackedConn)
	return t
}

type connKey struct{}

// connContext is http.Server.ConnContext: it makes the connection known to its requests.
func (c *conns) connContext(ctx context.Context, nc net.Conn) context.Context {
	if t := tracked(nc); t != nil {
		return context.WithValue(ctx, connKey{}, t)
	}
	return ctx
}

// handler wraps next to account for streams the client resets prematurely. A request
// whose context is already cancelled when its handler starts (the client reset it right
// after opening it: the pattern of rapid reset) is not served at all, so that an attack
// costs the backends nothing.
func (c *conns) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, _ := ctx.Value(connKey{}).(*trackedConn)
		if r.ProtoMajor != 2 || t == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		if ctx.Err() == nil {
			next.ServeHTTP(w, r)
		}
		early := errors.Is(ctx.Err(), context.Canceled) && time.Since(start) < prematureLifetime
		if t.streamEnded(early) {
			c.resetKill.Add(1)
			c.log.Warn("closing connection: most of its streams were reset by the client as soon as they began (HTTP/2 rapid reset)",
				"remote", t.RemoteAddr().String())
			_ = t.Close()
		}
	})
}

// streamEnded counts one finished stream and reports whether the connection must be
// closed for premature resets.
func (t *trackedConn) streamEnded(early bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams++
	if early {
		t.early++
	}
	if t.streams < resetWindow {
		return false
	}
	kill := t.early*2 > t.streams
	t.streams, t.early = 0, 0
	return kill
}
