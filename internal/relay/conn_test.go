package relay

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Frames written to one connection by many goroutines at once arrive in the order each
// goroutine wrote them, however the writes interleave with the socket's drain. net.Pipe
// has no descriptor, so every write goes through the drain goroutine and its end
// (drained) races with writers handing over their buffers: the case that once let a
// second writer overtake the first.
func TestConcurrentWritersKeepFrameOrder(t *testing.T) {
	for range 10 {
		concurrentWriters(t)
		if t.Failed() {
			return
		}
	}
}

func concurrentWriters(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	c := newH2conn(a, false, 4096, relayBackendConnWindow, 0)
	const writers, frames, size = 8, 400, 9000 // 9 KB frames: buffers fill and seal
	done := make(chan error, 1)
	go func() {
		fr := http2.NewFramer(nil, b)
		fr.SetMaxReadFrameSize(1 << 20)
		next := map[uint32]uint32{}
		for n := 0; n < writers*frames; n++ {
			f, err := fr.ReadFrame()
			if err != nil {
				done <- err
				return
			}
			d, ok := f.(*http2.DataFrame)
			if !ok {
				continue
			}
			seq := binary.BigEndian.Uint32(d.Data())
			if seq != next[d.StreamID] {
				done <- &orderError{d.StreamID, seq, next[d.StreamID]}
				return
			}
			next[d.StreamID]++
		}
		done <- nil
		_, _ = io.Copy(io.Discard, b)
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := uint32(2*w + 1)
			payload := make([]byte, size)
			var bt batch
			for i := range frames {
				binary.BigEndian.PutUint32(payload, uint32(i))
				for {
					if !c.lockWrite() {
						return
					}
					if c.roomLocked() >= int64(len(payload)) {
						c.appendData(id, false, payload)
						c.unlockWrite(&bt)
						break
					}
					c.mu.Unlock() // the buffer is full while the socket drains: wait
					bt.flush()
					time.Sleep(100 * time.Microsecond)
				}
				if i%3 == 0 {
					bt.flush()
				}
			}
			bt.flush()
		}()
	}
	wrote := make(chan struct{})
	go func() { wg.Wait(); close(wrote) }()
	deadline := time.After(time.Minute)
	select {
	case <-wrote:
	case err := <-done:
		t.Fatalf("%v (before the writers were done)", err)
	case <-deadline:
		t.Fatal("the writers never finished: the buffer never got room again (a drain's end was lost)")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-deadline:
		t.Fatal("not every frame arrived: a write was lost")
	}
}

type orderError struct{ stream, got, want uint32 }

func (e *orderError) Error() string {
	return fmt.Sprintf("stream %d: frame %d arrived where frame %d was due", e.stream, e.got, e.want)
}
