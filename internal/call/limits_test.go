package call

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func grpcMessage(payload []byte) []byte {
	b := make([]byte, PrefixLen, PrefixLen+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// firstOversized is the offset just past the prefix of the first message in stream that
// declares more than max bytes, or -1 when there is none: where a Scanner must trip.
func firstOversized(stream []byte, max int64) int {
	off := 0
	for len(stream)-off >= PrefixLen {
		size := int64(binary.BigEndian.Uint32(stream[off+1:]))
		if size > max {
			return off + PrefixLen
		}
		off += PrefixLen + int(size)
		if size > int64(len(stream)) {
			return -1
		}
	}
	return -1
}

// checkScanner feeds stream to a Scanner in chunks of n bytes and checks that it trips
// exactly in the chunk that completes the first oversized prefix, and never otherwise.
func checkScanner(t *testing.T, stream []byte, max int64, n int) {
	t.Helper()
	trip := firstOversized(stream, max)
	var s Scanner
	for off := 0; off < len(stream); off += n {
		end := min(off+n, len(stream))
		ok := s.Scan(stream[off:end], max)
		wantTrip := trip >= 0 && trip > off && trip <= end
		if ok == wantTrip {
			t.Fatalf("chunk %d..%d of %d (chunks of %d): Scan = %v, want %v (first oversized prefix ends at %d)", off, end, len(stream), n, ok, !wantTrip, trip)
		}
		if !ok {
			return
		}
	}
}

func TestScanner(t *testing.T) {
	small := grpcMessage([]byte("hello"))
	atLimit := grpcMessage(bytes.Repeat([]byte{'x'}, 100))
	over := grpcMessage(bytes.Repeat([]byte{'y'}, 101))
	cases := map[string][]byte{
		"one message":             small,
		"empty message":           grpcMessage(nil),
		"messages at the limit":   bytes.Join([][]byte{small, atLimit, grpcMessage(nil), atLimit}, nil),
		"over the limit first":    over,
		"over after good ones":    bytes.Join([][]byte{small, atLimit, over, small}, nil),
		"truncated prefix":        small[:3],
		"truncated payload":       atLimit[:50],
		"declares 1 GiB, sends 3": append([]byte{0, 0x40, 0, 0, 0}, "abc"...),
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, 5, 7, 32 << 10} {
				checkScanner(t, stream, 100, n)
			}
		})
	}
}

func TestLimitsAnswer(t *testing.T) {
	var s Scanner
	f := DefaultLimits().Request(&s, []byte{0, 0x40, 0, 0, 0})
	if f == nil || f.Code != codes.ResourceExhausted || !strings.Contains(f.Msg, "request message larger than 256MiB") {
		t.Fatalf("a 1 GiB request message: failure %v, want RESOURCE_EXHAUSTED saying the limit", f)
	}
	if f := (Limits{}).Response(&s, []byte{0, 0x40, 0, 0, 0}); f != nil {
		t.Fatalf("zero Limits must limit nothing, got %v", f)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{256 << 20: "256MiB", 1 << 30: "1GiB", 1536: "1536 bytes", 3 << 10: "3KiB", 7: "7 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzScanner checks, for any byte stream, limit and chunk size, that the scanner trips
// exactly at the first oversized prefix.
func FuzzScanner(f *testing.F) {
	f.Add(grpcMessage([]byte("hello")), int64(100), uint8(7))
	f.Add(append(grpcMessage(nil), 0, 0, 0, 1, 0), int64(10), uint8(1))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, int64(256<<20), uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, max int64, buf uint8) {
		if max < 0 {
			max = -max
		}
		checkScanner(t, stream, max, int(buf)%64+1)
	})
}
