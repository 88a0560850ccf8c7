package h2floor

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/bench/internal/harness"
)

const searchPath = "/milvus.proto.milvus.MilvusService/Search"

// The header fields of one Search call as the load generator's grpc-go sends them and
// the fake backend's grpc-go answers. Constant values throughout, so that after the first
// call every field is an index into the HPACK tables: the cheapest case, as a floor
// should be.
var (
	requestFields = []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "https"},
		{Name: ":path", Value: searchPath},
		{Name: ":authority", Value: "milvus.example.com"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "user-agent", Value: "grpc-go/1.77.0"},
		{Name: "te", Value: "trailers"},
	}
	// What the balancer adds as the AWS ALB does.
	forwardedFields = []hpack.HeaderField{
		{Name: "x-forwarded-for", Value: "127.0.0.1"},
		{Name: "x-forwarded-proto", Value: "https"},
		{Name: "x-forwarded-port", Value: "443"},
	}
	replyFields   = []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}}
	trailerFields = []hpack.HeaderField{{Name: "grpc-status", Value: "0"}, {Name: "grpc-message", Value: ""}}
)

// side is one HTTP/2 connection of the balancer: a Framer reading what its peer sent and
// writing what goes to its peer, with the connection's HPACK encoder and decoder, used
// the cheapest way: frames reused from read to read, header blocks decoded into a list
// reused from block to block (indexed fields allocate nothing).
type side struct {
	in     bytes.Reader
	out    bytes.Buffer
	fr     *http2.Framer
	enc    *hpack.Encoder
	block  bytes.Buffer
	dec    *hpack.Decoder
	fields []hpack.HeaderField // the last header block read
	// upstream is the request's header list with the ALB's fields added.
	upstream []hpack.HeaderField
	// memo holds blocks whose encoding left the table as it was: the same fields encode
	// to the same bytes again, so a relay copies them instead (milvus-lb's relay does).
	// Never forgotten: after the first call no block here changes a table, which a relay
	// in general must watch for.
	memo []memoBlock
}

type memoBlock struct {
	fields []hpack.HeaderField
	block  []byte
}

func newSide(peerBytes []byte) *side {
	s := &side{}
	s.in.Reset(peerBytes)
	s.fr = http2.NewFramer(&s.out, &s.in)
	s.fr.SetReuseFrames()
	s.enc = hpack.NewEncoder(&s.block)
	s.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { s.fields = append(s.fields, f) })
	return s
}

// readHeaders reads a HEADERS frame (one block, as gRPC's are) and decodes it into
// s.fields; it reports whether the stream ended with it.
func (s *side) readHeaders(tb testing.TB) bool {
	h := s.read(tb).(*http2.HeadersFrame)
	s.fields = s.fields[:0]
	if _, err := s.dec.Write(h.HeaderBlockFragment()); err != nil {
		tb.Fatal(err)
	}
	if err := s.dec.Close(); err != nil {
		tb.Fatal(err)
	}
	return h.StreamEnded()
}

// writeHeaders encodes fields (or finds them encoded before) and writes them as one
// HEADERS frame on stream id.
func (s *side) writeHeaders(tb testing.TB, id uint32, end bool, fields []hpack.HeaderField) {
	block := s.encoded(tb, fields)
	err := s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: end, EndHeaders: true})
	if err != nil {
		tb.Fatal(err)
	}
}

func (s *side) encoded(tb testing.TB, fields []hpack.HeaderField) []byte {
	for _, m := range s.memo {
		if slices.Equal(m.fields, fields) {
			return m.block
		}
	}
	s.block.Reset()
	for _, f := range fields {
		if err := s.enc.WriteField(f); err != nil {
			tb.Fatal(err)
		}
	}
	if allIndexed(s.block.Bytes()) {
		s.memo = append(s.memo, memoBlock{slices.Clone(fields), bytes.Clone(s.block.Bytes())})
	}
	return s.block.Bytes()
}

// allIndexed reports whether a header block is indexed fields only (RFC 7541 §6.1), whose
// encoding changed no table.
func allIndexed(block []byte) bool {
	for i := 0; i < len(block); i++ {
		if block[i]&0x80 == 0 {
			return false
		}
		if block[i]&0x7f == 0x7f { // the index goes on in the bytes with the top bit set
			for i++; i < len(block) && block[i]&0x80 != 0; i++ {
			}
		}
	}
	return true
}

// read reads one frame and returns it, valid until the next read.
func (s *side) read(tb testing.TB) http2.Frame {
	f, err := s.fr.ReadFrame()
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// grpcMessage is m as gRPC sends it: length-prefixed.
func grpcMessage(tb testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return prefixed(b)
}

func prefixed(b []byte) []byte {
	out := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	copy(out[5:], b)
	return out
}

// callBytes returns the bytes a peer sends for its first and its second call on stream
// 1 and 3, written by write.
func callBytes(tb testing.TB, write func(p *side, id uint32)) (first, second []byte) {
	p := newSide(nil)
	write(p, 1)
	first = bytes.Clone(p.out.Bytes())
	p.out.Reset()
	write(p, 3)
	return first, bytes.Clone(p.out.Bytes())
}

// relay is the balancer's HTTP/2 work for one call: read the client's HEADERS and DATA,
// write them to the backend with the ALB's fields added; read the backend's HEADERS, DATA
// and trailers, write them to the client. Each DATA payload is read into the Framer's
// buffer and copied into the other side's, as into a write buffer.
func relay(tb testing.TB, client, backend *side, id uint32) {
	client.readHeaders(tb)
	backend.upstream = append(append(backend.upstream[:0], client.fields...), forwardedFields...)
	backend.writeHeaders(tb, id, false, backend.upstream)
	for end := false; !end; {
		d := client.read(tb).(*http2.DataFrame)
		end = d.StreamEnded()
		if err := backend.fr.WriteData(id, end, d.Data()); err != nil {
			tb.Fatal(err)
		}
	}
	backend.readHeaders(tb)
	client.writeHeaders(tb, id, false, backend.fields)
	rd := backend.read(tb).(*http2.DataFrame)
	if err := client.fr.WriteData(id, false, rd.Data()); err != nil {
		tb.Fatal(err)
	}
	end := backend.readHeaders(tb)
	client.writeHeaders(tb, id, end, backend.fields)
}

// BenchmarkSearchHTTP2 is the HTTP/2 work of one Search call (see the package comment).
func BenchmarkSearchHTTP2(b *testing.B) {
	benchCall(b, searchCalls(b), nil)
}

// BenchmarkInsertHTTP2 is the same work for one Insert of 3 MiB: its 192 DATA frames
// read and written, the payload copied twice (into the Framer's buffer, into the write
// buffer).
func BenchmarkInsertHTTP2(b *testing.B) {
	benchCall(b, insertCalls(b), nil)
}

// BenchmarkSearchHTTP2TLS adds what TLS 1.3 with AES-128-GCM costs the balancer per call
// over Go's crypto: the client's bytes opened and the reply's sealed, one record each.
func BenchmarkSearchHTTP2TLS(b *testing.B) {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	benchCall(b, searchCalls(b), aead)
}

// calls is a call as the client and the backend send it, twice: the first call fills
// both directions' HPACK tables; the second finds every field in them.
type calls struct {
	clientFirst, clientCall, backendFirst, backendCall []byte
	reply                                              []byte // the reply's gRPC message
}

func searchCalls(tb testing.TB) calls {
	return newCalls(tb, searchPath, grpcMessage(tb, harness.SearchRequest()), harness.SearchReply())
}

// insertCalls is an Insert of 3 MiB (the bench's Insert workload) and its reply.
func insertCalls(tb testing.TB) calls {
	req := grpcMessage(tb, harness.InsertRequest(harness.RowsForBytes(3<<20)))
	reply, err := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{}, InsertCnt: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	return newCalls(tb, "/milvus.proto.milvus.MilvusService/Insert", req, reply)
}

// newCalls is a call to path with the request message req (framed) and the reply
// message reply (not yet framed). The client sends the request in DATA frames of 16 KiB,
// the default SETTINGS_MAX_FRAME_SIZE grpc-go keeps to.
func newCalls(tb testing.TB, path string, req, reply []byte) calls {
	c := calls{reply: prefixed(reply)}
	fields := slices.Clone(requestFields)
	fields[2].Value = path
	c.clientFirst, c.clientCall = callBytes(tb, func(p *side, id uint32) {
		p.writeHeaders(tb, id, false, fields)
		for rest := req; len(rest) > 0; {
			n := min(len(rest), 16<<10)
			_ = p.fr.WriteData(id, n == len(rest), rest[:n])
			rest = rest[n:]
		}
	})
	c.backendFirst, c.backendCall = callBytes(tb, func(p *side, id uint32) {
		p.writeHeaders(tb, id, false, replyFields)
		_ = p.fr.WriteData(id, false, c.reply)
		p.writeHeaders(tb, id, true, trailerFields)
	})
	return c
}

// benchCall measures relay over c's second call, its TLS records opened and sealed with
// aead if it is not nil.
func benchCall(b *testing.B, c calls, aead cipher.AEAD) {
	client, backend := newSide(c.clientFirst), newSide(c.backendFirst)
	relay(b, client, backend, 1)

	var nonce [12]byte
	var sealedRequest, opened, sealedReply []byte
	if aead != nil {
		sealedRequest = aead.Seal(nil, nonce[:], c.clientCall, nil)
	}
	b.ReportAllocs()
	for b.Loop() {
		client.out.Reset()
		backend.out.Reset()
		client.in.Reset(c.clientCall)
		backend.in.Reset(c.backendCall)
		if aead != nil {
			var err error
			if opened, err = aead.Open(opened[:0], nonce[:], sealedRequest, nil); err != nil {
				b.Fatal(err)
			}
		}
		relay(b, client, backend, 3)
		if aead != nil {
			sealedReply = aead.Seal(sealedReply[:0], nonce[:], client.out.Bytes(), nil)
		}
	}
	b.ReportMetric(float64(len(c.clientCall)), "client-bytes/call")
	b.ReportMetric(float64(len(c.backendCall)), "backend-bytes/call")
}

// TestRelayCarriesTheCall checks that the measured work is the whole of it: what relay
// writes is a call a backend and a client read as sent, the ALB's fields added.
func TestRelayCarriesTheCall(t *testing.T) {
	c := searchCalls(t)
	client, backend := newSide(c.clientFirst), newSide(c.backendFirst)
	relay(t, client, backend, 1)
	if client.in.Len() != 0 || backend.in.Len() != 0 {
		t.Fatalf("relay left %d client and %d backend bytes unread", client.in.Len(), backend.in.Len())
	}

	atBackend := newSide(backend.out.Bytes())
	atBackend.readHeaders(t)
	want := map[string]string{":path": searchPath, "x-forwarded-for": "127.0.0.1", "x-forwarded-port": "443"}
	for _, f := range atBackend.fields {
		if v, ok := want[f.Name]; ok && v == f.Value {
			delete(want, f.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("the backend's headers lack %v: %v", want, atBackend.fields)
	}
	if d := atBackend.read(t).(*http2.DataFrame); !d.StreamEnded() || len(d.Data()) < 3000 {
		t.Errorf("the backend got %d request bytes (end %v)", len(d.Data()), d.StreamEnded())
	}

	atClient := newSide(client.out.Bytes())
	if atClient.readHeaders(t); atClient.fields[0] != replyFields[0] {
		t.Errorf("reply headers %v", atClient.fields)
	}
	if d := atClient.read(t).(*http2.DataFrame); !bytes.Equal(d.Data(), c.reply) {
		t.Errorf("the client got a reply of %d bytes, want %d", len(d.Data()), len(c.reply))
	}
	if end := atClient.readHeaders(t); !end || atClient.fields[0] != trailerFields[0] {
		t.Errorf("trailers %v (end %v)", atClient.fields, end)
	}
	if _, err := atClient.fr.ReadFrame(); err != io.EOF {
		t.Errorf("after the trailers: %v, want EOF", err)
	}
}
