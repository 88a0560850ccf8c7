package relay

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
)

// Two streams uploading on one connection: every write of window back carries the
// connection's and the stream's together, one of them at least half its window, so the
// client is woken once per refresh rather than once for each window.
func TestWindowsGoBackTogether(t *testing.T) {
	var out bytes.Buffer
	c := &h2conn{connWindow: clientConnWindow, fr: http2.NewFramer(&out, nil)}
	owed := map[uint32]*int64{1: new(int64), 3: new(int64)}
	rd := http2.NewFramer(nil, &out)
	const frame, total = 16384, 3 << 20
	var refreshes int
	for sent := 0; sent < total; sent += frame {
		for _, id := range []uint32{1, 3} {
			c.refreshLocked(id, owed[id], false, frame)
			incs := map[uint32]uint32{}
			for out.Len() > 0 {
				f, err := rd.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				incs[f.Header().StreamID] += f.(*http2.WindowUpdateFrame).Increment
			}
			if len(incs) == 0 {
				continue
			}
			refreshes++
			if len(incs) != 2 || incs[id] == 0 {
				t.Fatalf("after %d bytes on stream %d, window went back as %v; want stream %d's and the connection's together", sent, id, incs, id)
			}
			if 2*int64(incs[0]) < c.connWindow && 2*int64(incs[id]) < streamWindow {
				t.Fatalf("after %d bytes on stream %d, %v went back: neither was half its window", sent, id, incs)
			}
		}
	}
	// Both streams' bytes count against the connection's window: a refresh each time
	// half of it is owed, and one for a stream whose own half comes between. Apart, the
	// connection's and the streams' would be 24.
	if most := 3 * 2 * total / int(clientConnWindow/2) / 2; refreshes > most {
		t.Errorf("%d refreshes for %d bytes on two streams; want at most %d", refreshes, 2*total, most)
	}
}
