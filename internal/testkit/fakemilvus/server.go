// Package fakemilvus is a Milvus backend of our own for tests: a plain
// grpc-go server that answers every MilvusService RPC, says which instance answered, records
// what it received, and misbehaves on demand (errors, sleeps, huge responses, sudden death).
//
// It is not a database. A few RPCs have canned but plausible behaviour (Search, Query,
// Insert, the collection calls, the two streams); every other MilvusService RPC answers OK
// with an empty response of the right type, so a balancer can be exercised on all 116.
//
// Controls read from the request:
//   - Search and Query: search_params / query_params "fake_result_bytes" = N pads the
//     response to about N bytes; "fake_sleep" = a Go duration sleeps first, honouring
//     cancellation (Call.Cancelled and Call.Deadline tell what the backend saw).
//   - Search: nq from the request, top-k from search_params "topk" (default 10).
//   - DumpMessages: one message per time tick from start_timetick to end_timetick; with
//     end_timetick 0 it streams until the client cancels, as Milvus does.
//
// Every response carries the header (or, for an error, the trailer) "x-fake-backend: Name".
package fakemilvus

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BackendHeader is the response header (gRPC metadata and HTTP) naming the instance.
const BackendHeader = "x-fake-backend"

// maxMsgSize is above Milvus's own limits (64 MiB in, 256 MiB out) so that the fake never
// is the component that refuses a large message.
const maxMsgSize = 512 << 20

// Options configures a Server. The zero value is a plain gRPC backend named "fakemilvus".
type Options struct {
	// Name identifies the instance: GetVersion returns it and every response carries it in
	// the x-fake-backend header.
	Name string
	// REST also serves HTTP/1.1 on the gRPC port, as Milvus does with cmux: a connection
	// that starts with the HTTP/2 preface goes to gRPC, any other to a small REST v2 handler.
	REST bool
	// HealthzAddr, if set, starts Milvus's management endpoint there (":9091" in Milvus):
	// GET /healthz answers 200 "OK" or 500 according to SetHealthy.
	HealthzAddr string
	// TLS, if set, serves TLS on the main port and on HealthzAddr (ALPN h2 and http/1.1).
	TLS *tls.Config
	// NoRecord turns off Calls() recording (counters stay on), for benchmarks.
	NoRecord bool
	// DigestRequests records each unary request's Call.RequestDigest.
	DigestRequests bool
	// OnCall, if set, is called after every call with its record (also with NoRecord).
	// It runs on the handler's goroutine and must not block.
	OnCall func(Call)
}

// Server is one fake Milvus instance. It may be started again after Stop or Kill, on the
// same address, to simulate a restarted backend; its settings, counters and collections
// survive. All methods may be called concurrently.
type Server struct {
	opts   Options
	header metadata.MD // x-fake-backend: Name, built once

	healthy     atomic.Bool
	delay       atomic.Int64 // time.Duration every MilvusService unary call waits (SetDelay)
	delayMu     sync.Mutex
	delaySet    chan struct{} // closed when SetDelay changes the delay
	failure     atomic.Pointer[status.Status]
	bodyStatus  atomic.Pointer[commonpb.Status]
	okStatus    *commonpb.Status
	health      *health.Server
	identifiers atomic.Int64

	rec recorder

	collMu      sync.Mutex
	collections map[string]int64 // name → id
	nextID      int64

	mu   sync.Mutex
	inst *instance
}

// instance is one Start: its sockets and servers.
type instance struct {
	grpc    *grpc.Server
	http    *http.Server // REST, nil unless Options.REST
	healthz *http.Server // nil unless Options.HealthzAddr
	lis     *trackingListener
	hzLis   net.Listener
	done    sync.WaitGroup
}

// New returns a Server; call Start to serve.
func New(opts Options) *Server {
	if opts.Name == "" {
		opts.Name = "fakemilvus"
	}
	s := &Server{
		opts:        opts,
		header:      metadata.Pairs(BackendHeader, opts.Name),
		okStatus:    &commonpb.Status{},
		health:      health.NewServer(),
		collections: make(map[string]int64),
		nextID:      1000,
	}
	s.healthy.Store(true)
	s.createCollection("c1")
	s.rec.init(!opts.NoRecord, opts.OnCall)
	s.health.SetServingStatus(milvuspb.MilvusService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Name returns Options.Name.
func (s *Server) Name() string { return s.opts.Name }

// Start listens on addr ("127.0.0.1:0" for any free port) and serves in the background.
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst != nil {
		return errors.New("fakemilvus: already started")
	}
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakemilvus %s: %w", s.opts.Name, err)
	}
	in := &instance{lis: newTrackingListener(raw)}
	if s.opts.HealthzAddr != "" {
		hz, err := net.Listen("tcp", s.opts.HealthzAddr)
		if err != nil {
			raw.Close()
			return fmt.Errorf("fakemilvus %s: healthz: %w", s.opts.Name, err)
		}
		in.hzLis = hz
	}

	in.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
		// What Milvus sets: clients ping every 5-10 s, also without calls in flight.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	)
	in.grpc.RegisterService(s.serviceDesc(), &service{s: s})
	healthpb.RegisterHealthServer(in.grpc, s.health)

	var lis net.Listener = in.lis
	if s.opts.TLS != nil {
		lis = tls.NewListener(lis, s.tlsConfig())
	}
	serve := func(f func()) {
		in.done.Add(1)
		go func() { defer in.done.Done(); f() }()
	}
	if s.opts.REST {
		grpcLis, httpLis := newChanListener(lis.Addr()), newChanListener(lis.Addr())
		in.http = &http.Server{Handler: s.restHandler(), ReadHeaderTimeout: 10 * time.Second}
		serve(func() { sniff(lis, grpcLis, httpLis) })
		serve(func() { _ = in.grpc.Serve(grpcLis) })
		serve(func() { _ = in.http.Serve(httpLis) })
	} else {
		serve(func() { _ = in.grpc.Serve(lis) })
	}
	if in.hzLis != nil {
		hzLis := in.hzLis
		if s.opts.TLS != nil {
			hzLis = tls.NewListener(hzLis, s.tlsConfig())
		}
		in.healthz = &http.Server{Handler: s.healthzHandler(), ReadHeaderTimeout: 10 * time.Second}
		serve(func() { _ = in.healthz.Serve(hzLis) })
	}
	s.inst = in
	return nil
}

func (s *Server) tlsConfig() *tls.Config {
	c := s.opts.TLS.Clone()
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	return c
}

// Addr returns the gRPC (and REST) address, or "" when not started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst == nil {
		return ""
	}
	return s.inst.lis.Addr().String()
}

// HealthzAddr returns the management address, or "" when not started or not configured.
func (s *Server) HealthzAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst == nil || s.inst.hzLis == nil {
		return ""
	}
	return s.inst.hzLis.Addr().String()
}

func (s *Server) take() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.inst
	s.inst = nil
	return in
}

// Stop shuts down gracefully: GOAWAY, then waits for calls in flight (bounded by their
// own deadlines, or the test's). Safe to call when not started.
func (s *Server) Stop() {
	in := s.take()
	if in == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// With REST the sniffer owns the socket listener and gRPC only sees a channel, so
	// close it here; without REST gRPC closes it again, harmlessly.
	in.lis.Close()
	if in.healthz != nil {
		_ = in.healthz.Shutdown(ctx)
	}
	if in.http != nil {
		_ = in.http.Shutdown(ctx)
	}
	in.grpc.GracefulStop()
	// Connections that never said which protocol they speak are still being sniffed.
	in.lis.closeAll()
	in.done.Wait()
}

// Kill simulates a killed process: the listeners and every connection close at once,
// without GOAWAY; calls in flight see their connection drop.
func (s *Server) Kill() {
	in := s.take()
	if in == nil {
		return
	}
	in.lis.Close()
	if in.hzLis != nil {
		in.hzLis.Close()
	}
	in.lis.closeAll()
	// The sockets are gone already; these only reap goroutines.
	in.grpc.Stop()
	if in.http != nil {
		in.http.Close()
	}
	if in.healthz != nil {
		in.healthz.Close()
	}
	in.done.Wait()
}

// SetHealthy sets what CheckHealth (is_healthy) and GET /healthz report. Default true.
func (s *Server) SetHealthy(ok bool) { s.healthy.Store(ok) }

// SetServing sets the grpc.health.v1 status of the overall server ("") and of
// MilvusService. NOT_SERVING is reported inside an OK response, as grpc-go's health
// server (and so Milvus) does. Default SERVING.
func (s *Server) SetServing(st healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(milvuspb.MilvusService_ServiceDesc.ServiceName, st)
}

// SetFailure makes every MilvusService call fail with code and msg, as a Trailers-Only
// response (the x-fake-backend name is in the trailers). codes.OK clears it.
func (s *Server) SetFailure(code codes.Code, msg string) {
	if code == codes.OK {
		s.failure.Store(nil)
		return
	}
	s.failure.Store(status.New(code, msg))
}

// SetDelay makes every MilvusService unary call wait d (or until its deadline or
// cancellation) before it is answered, with nothing sent meanwhile: a slow proxy, or
// with a long d a black hole that accepts calls and never answers. 0 clears it.
// Calls already waiting wait the new delay from their start.
func (s *Server) SetDelay(d time.Duration) {
	s.delayMu.Lock()
	s.delay.Store(int64(d))
	if s.delaySet != nil {
		close(s.delaySet)
	}
	s.delaySet = make(chan struct{})
	s.delayMu.Unlock()
}

// wait waits the delay SetDelay set, from start, or until ctx ends.
func (s *Server) wait(ctx context.Context, start time.Time) error {
	for {
		s.delayMu.Lock()
		d, changed := time.Duration(s.delay.Load()), s.delaySet
		s.delayMu.Unlock()
		left := time.Until(start.Add(d))
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
			return nil
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// SetMilvusError makes every MilvusService response carry an error Status in its body
// under gRPC OK, the way Milvus reports most errors (code is the Milvus 2.x error code,
// for example 100 for collection not found). code 0 clears it.
func (s *Server) SetMilvusError(code int32, reason string) {
	if code == 0 {
		s.bodyStatus.Store(nil)
		return
	}
	s.bodyStatus.Store(&commonpb.Status{
		ErrorCode: commonpb.ErrorCode_UnexpectedError,
		Code:      code,
		Reason:    reason,
	})
}

// status returns the Status to put in a response body. Responses share it: protobuf
// messages may be marshalled concurrently as long as nobody mutates them.
func (s *Server) status() *commonpb.Status {
	if st := s.bodyStatus.Load(); st != nil {
		return st
	}
	return s.okStatus
}

// trackingListener remembers its connections so Kill can close them all.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newTrackingListener(l net.Listener) *trackingListener {
	return &trackingListener{Listener: l, conns: make(map[*trackedConn]struct{})}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns = make(map[*trackedConn]struct{})
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// http2Preface is what every HTTP/2 (so gRPC) connection sends first (RFC 9113 §3.4).
// No HTTP/1.1 method starts with "PRI", so three bytes decide.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniff hands each accepted connection to the gRPC or the HTTP/1.1 listener by its first
// bytes, until lis is closed; then it closes both.
func sniff(lis net.Listener, grpcLis, httpLis *chanListener) {
	defer grpcLis.Close()
	defer httpLis.Close()
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		go func() {
			// A client that connects and says nothing must not hold a goroutine forever.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReaderSize(c, 64)
			head, err := br.Peek(3)
			_ = c.SetReadDeadline(time.Time{})
			if err != nil {
				c.Close()
				return
			}
			pc := &peekedConn{Conn: c, r: br}
			if string(head) == http2Preface[:3] {
				grpcLis.deliver(pc)
			} else {
				httpLis.deliver(pc)
			}
		}()
	}
}

// peekedConn replays the sniffed bytes before reading on from the socket.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by sniff.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
