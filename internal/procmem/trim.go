package procmem

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// After a burst of work the heap keeps, free, the pages the burst needed: 2,000 clients
// connecting at once took the heap to 130-150 MB for 40 MB live, and the runtime's
// scavenger gives the free pages back over tens of seconds (one round kept 200 MB
// resident for a minute after its calls ended). The burst also brought back executable
// pages that serving does not use (the handshakes' code, tables the first calls read).
// So when the heap the process keeps is well above what the collector's next target
// needs, and the balancer is quiet, it gives both back at once: a collection and every
// free page (debug.FreeOSMemory), and the executable's read-only pages (as at start, see
// ReleaseStartupPages; the ones in use come back from the page cache on their next
// access). docs/benchmarks.md, "Many clients, fourth round".
const (
	// trimRatio: the kept heap (objects, the unused room of their spans, free pages not
	// given back) above this many times the collector's target is what a burst left. In
	// steady state the scavenger keeps it about 1.1× the target.
	trimRatio = 1.5
	// trimMin: less than this above the target is not worth a collection.
	trimMin = 8 << 20
	// trimEvery: at most one trim in this long, so a balancer that alternates between
	// busy and quiet pays at most one extra collection per period.
	trimEvery = 10 * time.Second
)

// trimmer gives back what a burst left behind (above). TuneGC's goroutine only.
type trimmer struct {
	last    time.Time
	left    func() bool // whether the heap holds what a burst left: heapBurstLeft
	release func()      // gives the memory back: releaseAll
}

func newTrimmer() *trimmer {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/goal:bytes"},
	}
	return &trimmer{
		left: func() bool {
			metrics.Read(samples)
			kept := samples[0].Value.Uint64() + samples[1].Value.Uint64() + samples[2].Value.Uint64()
			return burstLeft(kept, samples[3].Value.Uint64())
		},
		release: func() {
			debug.FreeOSMemory()
			_, _, _ = ReleaseStartupPages()
		},
	}
}

// tick trims if the balancer is quiet, the last trim is trimEvery ago, and the heap
// holds what a burst left; it returns whether it did.
func (t *trimmer) tick(now time.Time, quiet bool) bool {
	if !quiet || now.Sub(t.last) < trimEvery || !t.left() {
		return false
	}
	t.last = now
	t.release()
	return true
}

// burstLeft says whether a heap keeping kept bytes (objects, the unused room of their
// spans, free pages not given back), with the collector's next target at goal, holds
// the leftovers of a burst worth giving back.
func burstLeft(kept, goal uint64) bool {
	return float64(kept) > trimRatio*float64(goal) && kept-goal > trimMin
}
