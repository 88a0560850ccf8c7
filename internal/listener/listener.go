// Package listener owns the sockets: one per listener port, serving HTTP/2 (h2 by ALPN on
// TLS, h2c with prior knowledge in plaintext) and HTTP/1.1 on the same port, TLS
// termination with the current snapshot's certificates, and graceful drain (GOAWAY, then
// wait for in-flight calls).
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/relay"
)

// Options are the limits and timeouts of every listener.
type Options struct {
	// BindAddress is the host part of every listener address; "" means all interfaces.
	BindAddress string
	// MaxConcurrentStreams per HTTP/2 connection; gRPC clients queue calls beyond it.
	MaxConcurrentStreams uint32
	// HandshakeTimeout bounds the TLS handshake and the request headers of HTTP/1.1,
	// against slowloris.
	HandshakeTimeout time.Duration
	// PingInterval is how long a silent HTTP/2 connection waits before the server pings
	// it; PingTimeout how long it then waits for the answer before closing. Idle
	// connections that answer are kept: clients such as pymilvus keep one connection for
	// hours and ping every 10 s with no call in flight.
	PingInterval, PingTimeout time.Duration
	// MaxHeaderBytes bounds the request header list (HTTP/1.1 and HTTP/2).
	MaxHeaderBytes int
	// MaxConnections bounds the client connections open at once over all ports; beyond
	// it new connections are closed as soon as they are accepted. 0 means no limit.
	MaxConnections int
	// IdleTimeout closes a connection with no request in progress whose client has sent
	// nothing of its own for this long (pings count). 0 means never.
	IdleTimeout time.Duration
	// WriteByteTimeout closes an HTTP/2 connection when no byte of what the balancer has
	// to send could be written for this long: a client that stopped reading its socket.
	WriteByteTimeout time.Duration
	// ListenFunc opens a listening socket; nil means net.Listen. A restart in place
	// (internal/handoff) sets it to take the sockets the previous process handed over.
	ListenFunc func(network, addr string) (net.Listener, error)
}

// Listen opens a listening socket with ListenFunc, or net.Listen when it is nil.
func (o Options) Listen(network, addr string) (net.Listener, error) {
	if o.ListenFunc != nil {
		return o.ListenFunc(network, addr)
	}
	return net.Listen(network, addr)
}

// DefaultOptions are the limits milvus-lb serves with unless flags change them.
func DefaultOptions() Options {
	return Options{
		MaxConcurrentStreams: 1000,
		HandshakeTimeout:     10 * time.Second,
		PingInterval:         60 * time.Second,
		PingTimeout:          15 * time.Second,
		MaxHeaderBytes:       1 << 20,
		MaxConnections:       10000,
		IdleTimeout:          time.Hour,
		WriteByteTimeout:     30 * time.Second,
	}
}

// Handler serves one port: whole HTTP/2 connections (the relay) and, through net/http,
// HTTP/1.1 requests.
type Handler interface {
	http.Handler
	NewConn(nc net.Conn, o relay.Options) *relay.Conn
}

// HandlerFunc returns the handler of one port.
type HandlerFunc func(port int, tls bool) Handler

// TLSFunc returns the TLS configuration in force for a port, or nil if it has none now.
// It is called for every handshake, so certificates can change without a restart.
type TLSFunc func(port int) *tls.Config

// Manager opens, keeps and closes the listener sockets. Reconcile and Shutdown may be
// called from different goroutines.
type Manager struct {
	opts    Options
	handler HandlerFunc
	tlsFor  TLSFunc
	log     *slog.Logger
	conns   *conns
	// handshakes counts and logs failed TLS handshakes (handshake.go).
	handshakes handshakes

	mu      sync.Mutex
	servers map[int]*server
	closed  bool
	drains  sync.WaitGroup
}

type server struct {
	port  int
	tls   bool
	ln    net.Listener
	srv   *http.Server
	relay *dispatcher // accepts, terminates TLS, and hands HTTP/2 to the relay
	done  chan struct{}
}

// NewManager returns a manager with no sockets open.
func NewManager(opts Options, handler HandlerFunc, tlsFor TLSFunc, logger *slog.Logger) *Manager {
	return &Manager{opts: opts, handler: handler, tlsFor: tlsFor, log: logger, conns: newConns(opts, logger), servers: map[int]*server{}}
}

// ConnStats returns the counters of the connection limits, over all ports.
func (m *Manager) ConnStats() ConnStats {
	s := m.conns.Stats()
	s.TLSHandshakeFailures = m.handshakes.Counts()
	return s
}

// Reconcile makes the open sockets match ls. New ports are opened first; if any cannot
// be, those opened by this call are closed again and nothing else changes. Ports no longer
// wanted are drained in the background.
func (m *Manager) Reconcile(ls []config.Listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("listeners are shut down")
	}
	want := map[int]bool{}
	var opened []*server
	for _, l := range ls {
		isTLS := l.Protocol == config.HTTPS
		want[l.Port] = true
		if s := m.servers[l.Port]; s != nil {
			if s.tls == isTLS {
				continue
			}
			// The protocol of a port changed: the old socket must go before the new one
			// can bind, so this is the one change that is not free of side effects if
			// the bind then fails.
			m.closeNow(s)
			delete(m.servers, l.Port)
		}
		s, err := m.open(l.Port, isTLS)
		if err != nil {
			for _, o := range opened {
				m.closeNow(o)
				delete(m.servers, o.port)
			}
			return err
		}
		opened = append(opened, s)
	}
	for _, s := range opened {
		m.servers[s.port] = s
		go m.serve(s)
	}
	for port, s := range m.servers {
		if !want[port] {
			delete(m.servers, port)
			m.drain(s, 30*time.Second)
		}
	}
	return nil
}

func (m *Manager) open(port int, isTLS bool) (*server, error) {
	addr := net.JoinHostPort(m.opts.BindAddress, strconv.Itoa(port))
	ln, err := m.opts.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln = m.conns.listener(ln)
	s := &server{port: port, tls: isTLS, done: make(chan struct{})}
	var tlsCfg *tls.Config
	if isTLS {
		tlsCfg = &tls.Config{
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				cfg := m.tlsFor(port)
				if cfg == nil {
					return nil, fmt.Errorf("port %d has no TLS configuration", port)
				}
				return cfg, nil
			},
			// Only used if GetConfigForClient is bypassed; never serves.
			NextProtos: []string{"h2", "http/1.1"},
		}
	}
	handler := m.handler(port, isTLS)
	s.relay = newDispatcher(ln, tlsCfg, m, handler)
	ln = s.relay
	s.ln = ln
	s.srv = &http.Server{
		Handler:     m.conns.handler(handler),
		ConnState:   m.conns.connState,
		ConnContext: m.conns.connContext,
		// HTTP/1.1 only: the dispatcher hands every HTTP/2 connection to the relay.
		Protocols:         http1Only(),
		ReadHeaderTimeout: m.opts.HandshakeTimeout,
		MaxHeaderBytes:    m.opts.MaxHeaderBytes,
		ErrorLog:          log.New(slogWriter{m.log}, "", 0),
	}
	s.relay.late = serveLate(s.srv)
	return s, nil
}

func (m *Manager) serve(s *server) {
	defer close(s.done)
	go s.relay.run()
	err := s.srv.Serve(s.ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		m.log.Error("listener stopped", "port", s.port, "error", err)
	}
}

func (m *Manager) closeNow(s *server) {
	_ = s.srv.Close()
	_ = s.ln.Close()
	s.relay.closeAll()
}

// drain stops accepting on s, sends GOAWAY to HTTP/2 clients, and waits up to limit for
// in-flight requests before closing what is left.
func (m *Manager) drain(s *server, limit time.Duration) {
	m.drains.Add(1)
	go func() {
		defer m.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		relayDone := make(chan struct{})
		go func() { defer close(relayDone); s.relay.shutdown(ctx) }()
		defer func() { <-relayDone }()
		if err := s.srv.Shutdown(ctx); err != nil {
			m.log.Warn("drain deadline passed; closing remaining connections", "port", s.port, "limit", limit)
			_ = s.srv.Close()
		}
	}()
}

// Ports returns the open ports, sorted.
func (m *Manager) Ports() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ports := make([]int, 0, len(m.servers))
	for p := range m.servers {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

// Addr returns the bound address of port, or nil if the port is not open.
func (m *Manager) Addr(port int) net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.servers[port]; s != nil {
		return s.ln.Addr()
	}
	return nil
}

// Shutdown stops accepting on every port, sends GOAWAY, and waits until in-flight
// requests finish or limit passes (then closes the rest). It returns when all is closed.
func (m *Manager) Shutdown(limit time.Duration) {
	m.mu.Lock()
	m.closed = true
	for port, s := range m.servers {
		delete(m.servers, port)
		m.drain(s, limit)
	}
	m.mu.Unlock()
	m.drains.Wait()
}

func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	return &p
}

// slogWriter sends net/http's internal error log (TLS handshake failures, protocol
// errors from clients) to slog at debug level: they describe clients, not the balancer.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "msg", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
