package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/grpc/codes"
)

func grpcMessage(payload []byte) []byte {
	b := make([]byte, grpcPrefixLen, grpcPrefixLen+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// expectedPass is what a limiter of max must pass on from stream: every whole message up
// to the first one that declares more than max, and whether it must fail there.
func expectedPass(stream []byte, max int64) (pass []byte, fails bool) {
	rest := stream
	for len(rest) >= grpcPrefixLen {
		size := int64(binary.BigEndian.Uint32(rest[1:]))
		if max > 0 && size > max {
			return stream[:len(stream)-len(rest)], true
		}
		end := grpcPrefixLen + size
		if end > int64(len(rest)) {
			return stream, false
		}
		rest = rest[end:]
	}
	return stream, false
}

// readAllSmall reads r with a buffer of size n, as a caller with a small buffer would.
func readAllSmall(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		m, err := r.Read(buf)
		out = append(out, buf[:m]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func checkLimiter(t *testing.T, stream []byte, max int64, readers map[string]func(io.Reader) io.Reader, bufSizes []int) {
	t.Helper()
	want, fails := expectedPass(stream, max)
	for name, wrap := range readers {
		for _, bs := range bufSizes {
			l := &messageLimiter{r: wrap(bytes.NewReader(stream)), max: max, what: "request"}
			got, err := readAllSmall(l, bs)
			if fails {
				var f *failure
				if !errors.As(err, &f) || f.code != codes.ResourceExhausted {
					t.Fatalf("%s/buf %d: error %v, want RESOURCE_EXHAUSTED", name, bs, err)
				}
			} else if err != nil {
				t.Fatalf("%s/buf %d: unexpected error %v", name, bs, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s/buf %d: passed %d bytes, want %d (first difference matters: a cut stream must end on a message boundary)", name, bs, len(got), len(want))
			}
		}
	}
}

var chunkings = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one-byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
}

func TestMessageLimiter(t *testing.T) {
	small := grpcMessage([]byte("hello"))
	empty := grpcMessage(nil)
	atLimit := grpcMessage(bytes.Repeat([]byte{'x'}, 100))
	over := grpcMessage(bytes.Repeat([]byte{'y'}, 101))
	cases := map[string][]byte{
		"one message":             small,
		"empty message":           empty,
		"messages at the limit":   bytes.Join([][]byte{small, atLimit, empty, atLimit}, nil),
		"over the limit first":    over,
		"over after good ones":    bytes.Join([][]byte{small, atLimit, over, small}, nil),
		"truncated prefix":        small[:3],
		"truncated payload":       atLimit[:50],
		"no body":                 nil,
		"declares 1 GiB, sends 3": append([]byte{0, 0x40, 0, 0, 0}, "abc"...),
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			checkLimiter(t, stream, 100, chunkings, []int{1, 2, 5, 7, 32 << 10})
		})
	}
}

func TestMessageLimiterStopsBeforeReadingTheMessage(t *testing.T) {
	// A 1 GiB message must be refused on its prefix: the limiter reads no payload.
	src := &countingReader{r: io.MultiReader(bytes.NewReader([]byte{0, 0x40, 0, 0, 0}), zeros{})}
	l := &messageLimiter{r: src, max: 256 << 20, what: "request"}
	n, err := l.Read(make([]byte, 32<<10))
	if n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want 0 and an error", n, err)
	}
	if src.n != grpcPrefixLen {
		t.Fatalf("read %d bytes from the body; want only the %d-byte prefix", src.n, grpcPrefixLen)
	}
	if !strings.Contains(err.Error(), "request message larger than 256MiB") {
		t.Fatalf("error %q does not say what was too large", err)
	}
	if _, err2 := l.Read(make([]byte, 10)); err2 != err {
		t.Fatalf("second Read error %v, want the same failure", err2)
	}
}

func TestBodyLimiter(t *testing.T) {
	for _, tc := range []struct {
		size int
		fail bool
	}{{0, false}, {99, false}, {100, false}, {101, true}, {10 << 20, true}} {
		src := &countingReader{r: io.MultiReader(bytes.NewReader(make([]byte, tc.size)))}
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

func TestLimitRequestContentLength(t *testing.T) {
	l := Limits{MaxRequestMessageBytes: 100}
	if _, f := l.limitRequest(io.NopCloser(strings.NewReader("")), 101, false); f == nil || f.httpStatus() != 413 {
		t.Fatalf("REST body declared over the limit: failure %v, want 413", f)
	}
	if b, f := (Limits{}).limitRequest(http0(), 1<<40, true); f != nil || b == nil {
		t.Fatalf("zero Limits must limit nothing")
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{256 << 20: "256MiB", 1 << 30: "1GiB", 1536: "1536 bytes", 3 << 10: "3KiB", 7: "7 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzMessageLimiter checks, for any byte stream, limit and read pattern, that the
// limiter passes on exactly the whole messages before the first oversized one.
func FuzzMessageLimiter(f *testing.F) {
	f.Add(grpcMessage([]byte("hello")), int64(100), uint8(7))
	f.Add(append(grpcMessage(nil), 0, 0, 0, 1, 0), int64(10), uint8(1))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, int64(256<<20), uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, max int64, buf uint8) {
		if max < 0 {
			max = -max
		}
		checkLimiter(t, stream, max, chunkings, []int{int(buf)%64 + 1})
	})
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

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func http0() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }
