package fakemilvus

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Call is the record of one finished call.
type Call struct {
	// Method is the full gRPC method ("/milvus.proto.milvus.MilvusService/Search"), or
	// "POST /v2/vectordb/..." for REST and "GET /healthz" for the management port.
	Method string
	// MD is a copy of the incoming metadata (HTTP headers for REST, keys lower-cased).
	MD metadata.MD
	// Deadline is the deadline the backend saw; zero when the client sent none.
	Deadline time.Time
	// Cancelled reports that the call's context had ended (client cancellation, deadline,
	// lost connection) by the time the handler returned.
	Cancelled bool
	// Code is the gRPC status the handler returned (for HTTP, OK or Unknown).
	Code codes.Code
	// RequestBytes is the encoded size of the request messages received.
	RequestBytes int
	// RequestDigest is the SHA-256 of the unary request as received (deterministically
	// re-encoded), with Options.DigestRequests: a test compares it with what it sent to
	// know the balancer delivered the message intact. Zero otherwise.
	RequestDigest [sha256.Size]byte
	// Peer is the address the call came from (the balancer's end of its connection to
	// this backend): calls with the same Peer shared a connection.
	Peer       string
	Start, End time.Time
}

// maxRecorded bounds Calls() memory in long runs; the oldest half is dropped beyond it.
const maxRecorded = 1 << 16

type recorder struct {
	record bool
	onCall func(Call)

	mu    sync.Mutex
	calls []Call

	counts   sync.Map // method → *atomic.Int64
	total    atomic.Int64
	inflight atomic.Int64
}

func (r *recorder) init(record bool, onCall func(Call)) {
	r.record, r.onCall = record, onCall
}

// wanted reports whether a Call record must be built at all.
func (r *recorder) wanted() bool { return r.record || r.onCall != nil }

func (r *recorder) begin(method string) {
	r.total.Add(1)
	r.inflight.Add(1)
	c, ok := r.counts.Load(method)
	if !ok {
		c, _ = r.counts.LoadOrStore(method, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

func (r *recorder) finish(c Call) {
	r.inflight.Add(-1)
	if !r.wanted() {
		return
	}
	c.End = time.Now()
	if r.record {
		r.mu.Lock()
		if len(r.calls) >= maxRecorded {
			r.calls = append(r.calls[:0], r.calls[len(r.calls)/2:]...)
		}
		r.calls = append(r.calls, c)
		r.mu.Unlock()
	}
	if r.onCall != nil {
		r.onCall(c)
	}
}

// Calls returns the finished calls in the order they ended (at most the last 65536).
func (s *Server) Calls() []Call {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]Call(nil), s.rec.calls...)
}

// Count returns how many calls of method have started. A bare name such as "Search"
// means a MilvusService method; otherwise give the full method or the HTTP form of
// Call.Method.
func (s *Server) Count(method string) int64 {
	if !strings.Contains(method, "/") {
		method = "/" + milvuspb.MilvusService_ServiceDesc.ServiceName + "/" + method
	}
	if c, ok := s.rec.counts.Load(method); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Total returns how many calls of any kind have started, health checks included.
func (s *Server) Total() int64 { return s.rec.total.Load() }

// Inflight returns how many calls are running now.
func (s *Server) Inflight() int64 { return s.rec.inflight.Load() }

// Reset forgets recorded calls and zeroes the counters (not Inflight).
func (s *Server) Reset() {
	s.rec.mu.Lock()
	s.rec.calls = nil
	s.rec.mu.Unlock()
	s.rec.counts.Range(func(_, v any) bool { v.(*atomic.Int64).Store(0); return true })
	s.rec.total.Store(0)
}

var milvusPrefix = "/" + milvuspb.MilvusService_ServiceDesc.ServiceName + "/"

// newCall starts a record with what is known before the handler runs.
func (s *Server) newCall(ctx context.Context, method string) Call {
	c := Call{Method: method, Start: time.Now()}
	c.MD, _ = metadata.FromIncomingContext(ctx) // already a copy
	c.Deadline, _ = ctx.Deadline()
	if p, ok := peer.FromContext(ctx); ok {
		c.Peer = p.Addr.String()
	}
	return c
}

// Digest is the SHA-256 of m's deterministic encoding, as Call.RequestDigest.
func Digest(m proto.Message) [sha256.Size]byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return sha256.Sum256(b)
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.rec.begin(info.FullMethod)
	var c Call
	if s.rec.wanted() {
		c = s.newCall(ctx, info.FullMethod)
		if m, ok := req.(proto.Message); ok {
			c.RequestBytes = proto.Size(m)
			if s.opts.DigestRequests {
				c.RequestDigest = Digest(m)
			}
		}
	}
	resp, err := s.handleUnary(ctx, req, info, handler)
	c.Code = status.Code(err)
	c.Cancelled = ctx.Err() != nil
	s.rec.finish(c)
	return resp, err
}

func (s *Server) handleUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.delay.Load() > 0 && strings.HasPrefix(info.FullMethod, milvusPrefix) {
		if err := s.wait(ctx, time.Now()); err != nil {
			return nil, err
		}
	}
	if st := s.failure.Load(); st != nil && strings.HasPrefix(info.FullMethod, milvusPrefix) {
		// Trailer, not header: a header would turn the Trailers-Only response into
		// headers + trailers, and a balancer must pass the real shape through.
		_ = grpc.SetTrailer(ctx, s.header)
		return nil, st.Err()
	}
	_ = grpc.SetHeader(ctx, s.header)
	return handler(ctx, req)
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	s.rec.begin(info.FullMethod)
	var c Call
	cs := &countingStream{ServerStream: ss}
	if s.rec.wanted() {
		c = s.newCall(ctx, info.FullMethod)
		ss = cs
	}
	var err error
	if st := s.failure.Load(); st != nil && strings.HasPrefix(info.FullMethod, milvusPrefix) {
		ss.SetTrailer(s.header)
		err = st.Err()
	} else {
		_ = ss.SetHeader(s.header)
		err = handler(srv, ss)
	}
	c.Code = status.Code(err)
	c.Cancelled = ctx.Err() != nil
	c.RequestBytes = int(cs.n.Load())
	s.rec.finish(c)
	return err
}

// countingStream adds up the size of received messages.
type countingStream struct {
	grpc.ServerStream
	n atomic.Int64
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		if pm, ok := m.(proto.Message); ok {
			s.n.Add(int64(proto.Size(pm)))
		}
	}
	return err
}
