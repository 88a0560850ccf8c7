package relay

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// encodeBlock encodes fields as a header block without indexing (so that the decoder's
// dynamic table does not carry state from one test case to the next).
func encodeBlock(t *testing.T, fields ...hpack.HeaderField) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range fields {
		f.Sensitive = true
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// readBlock writes block as HEADERS plus CONTINUATIONs of at most frag bytes and decodes
// it with a blockDecoder of the given limit.
func readBlock(t *testing.T, block []byte, frag int, limit uint32) (*headerBlock, error) {
	t.Helper()
	var wire bytes.Buffer
	fw := http2.NewFramer(&wire, nil)
	first := block[:min(frag, len(block))]
	rest := block[len(first):]
	if err := fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(rest) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(rest) > 0 {
		n := min(frag, len(rest))
		if err := fw.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	fr := http2.NewFramer(nil, &wire)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	return newBlockDecoder(limit).read(fr, f.(*http2.HeadersFrame))
}

var request = []hpack.HeaderField{
	{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
	{Name: ":path", Value: "/milvus.proto.milvus.MilvusService/Search"}, {Name: ":authority", Value: "milvus-demo.milvus.io"},
	{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}, {Name: "dbname", Value: "default"},
}

func TestHeaderBlockDecodes(t *testing.T) {
	// In one frame, and split into 3-byte CONTINUATIONs (fields across fragments).
	for _, frag := range []int{1 << 14, 3} {
		b, err := readBlock(t, encodeBlock(t, request...), frag, 0)
		if err != nil {
			t.Fatalf("fragments of %d: %v", frag, err)
		}
		if b.Truncated || len(b.Fields) != len(request) || b.Pseudo(pPath) != request[2].Value ||
			b.Pseudo(pAuthority) != request[3].Value || len(b.PseudoFields()) != 4 ||
			b.RegularFields()[2].Value != "default" || !b.StreamEnded() || b.StreamID != 1 {
			t.Errorf("fragments of %d: decoded %+v", frag, b.Fields)
		}
	}
}

func TestHeaderBlockRefusesMalformedFields(t *testing.T) {
	cases := map[string][]hpack.HeaderField{
		"upper-case name":           append(request[:4:4], hpack.HeaderField{Name: "Dbname", Value: "x"}),
		"invalid name":              append(request[:4:4], hpack.HeaderField{Name: "db name", Value: "x"}),
		"invalid value":             append(request[:4:4], hpack.HeaderField{Name: "dbname", Value: "a\x00b"}),
		"pseudo after regular":      {request[4], request[0], request[1], request[2]},
		"unknown pseudo":            append(request[:4:4], hpack.HeaderField{Name: ":db", Value: "x"}),
		"repeated pseudo":           append(request[:4:4], hpack.HeaderField{Name: ":path", Value: "/x"}),
		"request and response both": append(request[:4:4], hpack.HeaderField{Name: ":status", Value: "200"}),
		"response and request both": {{Name: ":status", Value: "200"}, request[2]},
		"repeated status":           {{Name: ":status", Value: "200"}, {Name: ":status", Value: "204"}},
	}
	for name, fields := range cases {
		_, err := readBlock(t, encodeBlock(t, fields...), 1<<14, 0)
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != http2.ErrCodeProtocol || se.StreamID != 1 {
			t.Errorf("%s: %v, want a PROTOCOL_ERROR stream error", name, err)
		}
	}
}

func TestHeaderBlockLimit(t *testing.T) {
	big := hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", 600)}
	// Over the 1,000-byte limit: the fields before it are kept, the block is truncated.
	b, err := readBlock(t, encodeBlock(t, append(request[:4:4], big, big)...), 1<<14, 1000)
	if err != nil || !b.Truncated || len(b.Fields) != 5 {
		t.Errorf("over the limit: %v, truncated %v with %d fields; want truncated after 5", err, b != nil && b.Truncated, len(b.Fields))
	}
	// A fragment more than twice the limit is not decoded: the connection goes.
	huge := encodeBlock(t, append(request[:4:4], hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", 10000)})...)
	_, err = readBlock(t, huge, 1<<14, 1000)
	var ce http2.ConnectionError
	if !errors.As(err, &ce) || http2.ErrCode(ce) != http2.ErrCodeProtocol {
		t.Errorf("a fragment far over the limit: %v, want a PROTOCOL_ERROR connection error", err)
	}
	// Garbage is a compression error: the decoder's state is lost for the connection.
	_, err = readBlock(t, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1<<14, 0)
	if !errors.As(err, &ce) || http2.ErrCode(ce) != http2.ErrCodeCompression {
		t.Errorf("an undecodable block: %v, want a COMPRESSION_ERROR connection error", err)
	}
}

func TestHeaderBlockReusesItsFields(t *testing.T) {
	// The point of the decoder: a connection's blocks cost no allocation once its field
	// slice has grown (with indexed fields, as clients send them after the first call).
	var wire bytes.Buffer
	fw := http2.NewFramer(&wire, nil)
	fr := http2.NewFramer(nil, &wire)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	d := newBlockDecoder(0)
	next := func() {
		block.Reset()
		for _, f := range request {
			_ = enc.WriteField(f)
		}
		_ = fw.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.read(fr, f.(*http2.HeadersFrame)); err != nil {
			t.Fatal(err)
		}
	}
	next()
	// One allocation is the Framer's HeadersFrame; the block itself adds none.
	if n := testing.AllocsPerRun(100, next); n > 1 {
		t.Errorf("%v allocations per header block, want at most the Framer's 1", n)
	}
}

// checkRequest reads the fields the relay acts on in its one walk, the last value of
// each as a repeated field's, and refuses a request without the pseudo-header fields
// every request carries.
func TestCheckRequest(t *testing.T) {
	fields := append(request[:4:4], hpack.HeaderField{Name: "host", Value: "h1"}, hpack.HeaderField{Name: "grpc-timeout", Value: "1S"},
		hpack.HeaderField{Name: "content-type", Value: "application/grpc+proto"}, hpack.HeaderField{Name: "grpc-timeout", Value: "2S"})
	b, err := readBlock(t, encodeBlock(t, fields...), 1<<14, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := checkRequest(b)
	want := requestHead{contentLength: -1, contentType: "application/grpc+proto", host: "h1", timeout: "2S"}
	if !ok || h != want || b.Pseudo(pMethod) != "POST" || b.Pseudo(pAuthority) != request[3].Value || b.Pseudo(pStatus) != "" {
		t.Errorf("checkRequest: %+v %v, method %q; want %+v", h, ok, b.Pseudo(pMethod), want)
	}
	for name, fields := range map[string][]hpack.HeaderField{
		"no :scheme":  {request[0], request[2], request[3]},
		"empty :path": {request[0], request[1], {Name: ":path"}},
		"a response":  {{Name: ":status", Value: "200"}},
	} {
		b, err := readBlock(t, encodeBlock(t, fields...), 1<<14, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := checkRequest(b); ok {
			t.Errorf("%s: passed checkRequest", name)
		}
	}
}
