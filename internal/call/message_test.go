package call

import (
	"bytes"
	"testing"
)

// However the message is cut into frames, the reader sees its first max bytes once
// they are all there, and the last frame's view is marked last.
func TestFirstMessage(t *testing.T) {
	payload := bytes.Repeat([]byte("milvus"), 100) // 600 bytes
	stream := append(grpcMessage(payload), grpcMessage([]byte("second"))...)
	for _, max := range []int{10, 600, 4096} {
		want := payload[:min(max, len(payload))]
		for _, cut := range []int{1, 3, 5, 7, 64, 605, 1000} {
			var m firstMessage
			var got []byte
			lastSeen := false
			for off := 0; off < len(stream) && !lastSeen; off += cut {
				msg, last, ok := m.add(stream[off:min(off+cut, len(stream))], max)
				if ok {
					got = append(got[:0], msg...)
				}
				lastSeen = last
			}
			if !lastSeen || !bytes.Equal(got, want) {
				t.Fatalf("max %d, frames of %d: saw %d bytes (last %v), want the first %d", max, cut, len(got), lastSeen, len(want))
			}
			if _, last, ok := m.add([]byte("more"), max); ok || !last {
				t.Fatalf("max %d, frames of %d: bytes after the message were read", max, cut)
			}
		}
	}
	// One frame holding the whole message is read in place.
	var m firstMessage
	frame := grpcMessage(payload)
	msg, last, ok := m.add(frame, 4096)
	if !ok || !last || &msg[0] != &frame[PrefixLen] {
		t.Fatalf("a whole message in one frame was copied or not read")
	}
}
