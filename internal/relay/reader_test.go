package relay

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"golang.org/x/net/http2"

	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// stepReader returns its steps one Read at a time: bytes, or an error.
type stepReader struct{ steps []any }

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	r.steps = r.steps[1:]
	switch s := s.(type) {
	case error:
		return 0, s
	case withErr:
		return copy(p, s.b), s.err
	}
	return copy(p, s.([]byte)), nil
}

// withErr is a step of bytes that come with an error.
type withErr struct {
	b   []byte
	err error
}

// A frame header cut short by a park is read whole after it: the Framer never sees the
// part that came before the park.
func TestFrameReaderKeepsHeaderAcrossPark(t *testing.T) {
	var wire bytes.Buffer
	w := http2.NewFramer(&wire, nil)
	_ = w.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	_ = w.WriteData(1, true, []byte("payload"))
	b := wire.Bytes()
	// The last step but one is crypto/tls's: bytes, and the park of its look for a
	// close_notify after them, with the DATA frame's header whole and its payload to come.
	src := &stepReader{steps: []any{b[:4], sock.ErrParked, b[4:7], sock.ErrParked, withErr{b[7:26], sock.ErrParked}, b[26:]}}
	br := newFrameReader(src, 512)
	fr := http2.NewFramer(nil, br)
	var got []http2.Frame
	for len(got) < 2 {
		br.header = true
		f, err := fr.ReadFrame()
		if errors.Is(err, sock.ErrParked) {
			br.release() // holds the part of the header: kept
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.Data != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} {
			t.Fatalf("ping data %v", p.Data)
		}
		if d, ok := f.(*http2.DataFrame); ok && string(d.Data()) != "payload" {
			t.Fatalf("data %q", d.Data())
		}
		got = append(got, f)
	}
	if _, ok := got[1].(*http2.DataFrame); !ok {
		t.Fatalf("second frame %T", got[1])
	}
	br.release()
	if br.buf != nil {
		t.Fatal("an empty reader kept its buffer")
	}
}
