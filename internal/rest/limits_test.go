package rest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

func TestBodyLimiter(t *testing.T) {
	for _, tc := range []struct {
		size int
		fail bool
	}{{0, false}, {99, false}, {100, false}, {101, true}, {10 << 20, true}} {
		src := &countingReader{r: bytes.NewReader(make([]byte, tc.size))}
		l := &bodyLimiter{r: io.NopCloser(src), max: 100}
		_, err := io.Copy(io.Discard, l)
		if (err != nil) != tc.fail {
			t.Fatalf("size %d: error %v, want failure %v", tc.size, err, tc.fail)
		}
		if src.n > 101 {
			t.Fatalf("size %d: read %d bytes; the limiter must stop one byte past the limit", tc.size, src.n)
		}
	}
}

func TestLimitBodyContentLength(t *testing.T) {
	l := call.Limits{MaxRequestMessageBytes: 100}
	if _, f := limitBody(l, io.NopCloser(strings.NewReader("")), 101); f == nil || f.HTTPStatus() != 413 {
		t.Fatalf("REST body declared over the limit: failure %v, want 413", f)
	}
	if b, f := limitBody(call.Limits{}, io.NopCloser(strings.NewReader("")), 1<<40); f != nil || b == nil {
		t.Fatalf("zero Limits must limit nothing")
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
