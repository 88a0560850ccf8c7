// Package backend is the benchmark's fake Milvus: a grpc-go server that answers Search and
// Insert with canned replies, as cheaply as a gRPC server can.
//
// The load generator, this backend and the balancer under test share the machine's cores,
// so every microsecond the backend spends per call is taken from the balancer's share and
// narrows the differences the benchmark is there to show. internal/testkit/fakemilvus, the
// fake of the tests, decodes every request into Milvus' message types, builds a fresh reply
// and runs interceptors that record each call: realistic, and about three times what this
// backend costs. Here messages stay bytes (a codec that neither decodes nor copies),
// replies are encoded once, and handlers run on a fixed pool of goroutines.
//
// It still checks what it is sent: every Search and Insert request must be byte for byte
// the one the load generator encodes (a memcmp, a fraction of what decoding costs), so a
// balancer that damages a request fails the call, and the run.
package backend

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Messages are the requests the backend accepts and the replies it gives.
type Messages struct {
	// Search is the encoded SearchRequest every Search must carry, or CachedSearch (the
	// search-cached workload's).
	Search, CachedSearch []byte
	// SearchReply is the encoded SearchResults every Search gets.
	SearchReply []byte
	// Insert returns the encoded InsertRequest of rows rows, which an Insert declaring
	// num_rows = rows must be. It is called once per row count.
	Insert func(rows int) []byte
	// MarkBusy counts the Inserts in flight and marks the Searches that overlapped one
	// (BusyTrailer): the mixed workload's. Off, nothing is counted.
	MarkBusy bool
}

// Server is a running backend.
type Server struct {
	g   *grpc.Server
	lis net.Listener
	m   Messages

	mu      sync.Mutex
	cases   map[uint32]*insertCase
	inserts atomic.Int64 // in flight, when Messages.MarkBusy
}

// insertCase is what the backend knows of inserts of one row count.
type insertCase struct {
	once  sync.Once
	req   []byte
	reply []byte
}

const service = "milvus.proto.milvus.MilvusService"

// streamWorkers is the size of the handler pool: above the concurrent calls of every
// workload (32 Search callers, 32 big inserts).
const streamWorkers = 128

// Replies of the calls other than Search and Insert that clients and balancers make.
var (
	versionReply = mustMarshal(&milvuspb.GetVersionResponse{Status: &commonpb.Status{}, Version: "v2.6.0-bench"})
	healthReply  = mustMarshal(&milvuspb.CheckHealthResponse{Status: &commonpb.Status{}, IsHealthy: true})
)

// Start serves on addr ("127.0.0.1:0" for any free port) in plaintext h2c.
func Start(addr string, m Messages) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{lis: lis, m: m, cases: map[uint32]*insertCase{}}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{}),
		// Milvus takes requests up to 64 MiB; the big-insert workload sends 32 MiB.
		grpc.MaxRecvMsgSize(512 << 20),
		grpc.MaxSendMsgSize(512 << 20),
		// What Milvus allows: clients ping every 5-10 s, also with no call in flight (the
		// idle workload, direct).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Handlers on a pool of goroutines with grown stacks, more than the workloads'
		// concurrent calls: a call that finds every worker busy gets a new goroutine, whose
		// stack then grows two or three times during the call (runtime.copystack was a
		// sixth of this backend's CPU with GOMAXPROCS workers).
		grpc.NumStreamWorkers(streamWorkers),
		grpc.UnknownServiceHandler(s.other),
	}
	if m.MarkBusy {
		opts = append(opts, grpc.StatsHandler(busyStats{&s.inserts}))
	}
	s.g = grpc.NewServer(opts...)
	s.g.RegisterService(&grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Search", Handler: s.search},
			{MethodName: "Insert", Handler: s.insert},
			{MethodName: "GetVersion", Handler: canned(versionReply)},
			{MethodName: "CheckHealth", Handler: canned(healthReply)},
		},
	}, struct{}{})
	go func() { _ = s.g.Serve(lis) }()
	return s, nil
}

// Addr is the address the backend listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Stop closes the listener and every connection at once.
func (s *Server) Stop() { s.g.Stop() }

// message is a request or reply as its wire bytes. A request's buffers are only valid
// during the codec's Unmarshal, which checks them there.
type message struct {
	b     []byte // a reply to send
	check func(mem.BufferSlice) error
	err   error
}

// codec keeps messages as bytes: replies go out without a copy, requests are checked in
// place and never assembled.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*message)
	if !ok {
		return nil, fmt.Errorf("backend codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*message)
	if !ok {
		return fmt.Errorf("backend codec: cannot unmarshal into %T", v)
	}
	if m.check != nil {
		m.err = m.check(data)
	}
	return nil
}

func canned(reply []byte) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(&message{}); err != nil {
			return nil, err
		}
		return &message{b: reply}, nil
	}
}

func (s *Server) search(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	req := message{check: func(data mem.BufferSlice) error {
		if !equal(data, s.m.Search) && !equal(data, s.m.CachedSearch) {
			return status.Errorf(codes.InvalidArgument, "backend: Search request of %d bytes is not the one the load generator sends", data.Len())
		}
		return nil
	}}
	if err := dec(&req); err != nil {
		return nil, err
	}
	if req.err != nil {
		return nil, req.err
	}
	s.markBusy(ctx)
	return &message{b: s.m.SearchReply}, nil
}

func (s *Server) insert(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var c *insertCase
	req := message{check: func(data mem.BufferSlice) error {
		rows, ok := numRows(data)
		if !ok {
			return status.Error(codes.InvalidArgument, "backend: Insert request without num_rows")
		}
		c = s.insertCase(rows)
		if !equal(data, c.req) {
			return status.Errorf(codes.InvalidArgument, "backend: Insert request of %d rows (%d bytes) is not the one the load generator sends", rows, data.Len())
		}
		return nil
	}}
	if err := dec(&req); err != nil {
		return nil, err
	}
	if req.err != nil {
		return nil, req.err
	}
	return &message{b: c.reply}, nil
}

// other answers every other call of a client (Milvus SDKs call a few on connecting) with
// an empty message: all of Milvus' replies decode from it, with status Success.
func (s *Server) other(_ any, stream grpc.ServerStream) error {
	if err := stream.RecvMsg(&message{}); err != nil {
		return err
	}
	return stream.SendMsg(&message{})
}

func (s *Server) insertCase(rows uint32) *insertCase {
	s.mu.Lock()
	c := s.cases[rows]
	if c == nil {
		c = &insertCase{}
		s.cases[rows] = c
	}
	s.mu.Unlock()
	c.once.Do(func() {
		c.req = s.m.Insert(int(rows))
		c.reply = InsertReply(int(rows))
	})
	return c
}

// InsertReply is the reply to an insert of rows rows: every row inserted, ids 0..rows-1.
func InsertReply(rows int) []byte {
	ids := make([]int64, rows)
	for i := range ids {
		ids[i] = int64(i)
	}
	return mustMarshal(&milvuspb.MutationResult{
		Status:    &commonpb.Status{},
		IDs:       &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: ids}}},
		InsertCnt: int64(rows),
		Timestamp: 1 << 18,
	})
}

// equal reports whether the buffers hold exactly want.
func equal(data mem.BufferSlice, want []byte) bool {
	if data.Len() != len(want) {
		return false
	}
	for _, b := range data {
		p := b.ReadOnlyData()
		if !bytes.Equal(p, want[:len(p)]) {
			return false
		}
		want = want[len(p):]
	}
	return true
}

// numRows finds InsertRequest.num_rows (field 7) among the top-level fields of an encoded
// request, skipping the others (fields_data is megabytes) without assembling the message.
func numRows(data mem.BufferSlice) (uint32, bool) {
	r := reader{bufs: data}
	for !r.done() {
		num, typ, ok := r.tag()
		if !ok {
			return 0, false
		}
		switch typ {
		case protowire.VarintType:
			v, ok := r.varint()
			if !ok {
				return 0, false
			}
			if num == 7 {
				return uint32(v), true
			}
		case protowire.BytesType:
			n, ok := r.varint()
			if !ok || !r.skip(n) {
				return 0, false
			}
		case protowire.Fixed32Type:
			if !r.skip(4) {
				return 0, false
			}
		case protowire.Fixed64Type:
			if !r.skip(8) {
				return 0, false
			}
		default:
			return 0, false
		}
	}
	return 0, false
}

// reader reads protobuf wire data spread over buffers.
type reader struct {
	bufs mem.BufferSlice
	i    int // current buffer
	off  int // offset in it
}

func (r *reader) done() bool {
	for r.i < len(r.bufs) && r.off >= r.bufs[r.i].Len() {
		r.i, r.off = r.i+1, 0
	}
	return r.i >= len(r.bufs)
}

func (r *reader) byte() (byte, bool) {
	if r.done() {
		return 0, false
	}
	c := r.bufs[r.i].ReadOnlyData()[r.off]
	r.off++
	return c, true
}

func (r *reader) varint() (uint64, bool) {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c, ok := r.byte()
		if !ok {
			return 0, false
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, true
		}
	}
	return 0, false
}

func (r *reader) tag() (protowire.Number, protowire.Type, bool) {
	v, ok := r.varint()
	if !ok {
		return 0, 0, false
	}
	num, typ := protowire.DecodeTag(v)
	return num, typ, num.IsValid()
}

func (r *reader) skip(n uint64) bool {
	for n > 0 {
		if r.done() {
			return false
		}
		k := min(n, uint64(r.bufs[r.i].Len()-r.off))
		r.off += int(k)
		n -= k
	}
	return true
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
