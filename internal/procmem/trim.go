package procmem

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// After a burst of work the heap keeps, free, the pages the burst needed: 2,000 clients
// connecting at once took the heap to 100-200 MB for 30-40 MB live, and the runtime's
// scavenger gives the free pages back over seconds to tens of seconds (one loaded round
// kept 200 MB resident for a minute after its calls ended). So when the most heap kept
// since the last time is well above what the collector's target now needs, and the
// balancer is quiet, the free heap goes back at once: a collection and every free page
// (debug.FreeOSMemory).
//
// The executable's pages too: serving maps them 64 KiB at a time as code and tables are
// first used, and keeps those a burst or a rare path touched once (the handshakes, the
// first configuration, a profile's symbols): 23-34 MiB of them were resident during
// many-clients rounds, of which 16-20 MiB in use. While quiet they are dropped every
// pagesEvery (as at start, see ReleaseStartupPages): the ones in use come back from the
// page cache on their next access. They leave the resident set, not the machine's
// memory: the page cache keeps them. docs/benchmarks.md, "Many clients, fourth round".
//
// Quiet is less than the live heap allocated a second (TuneGC). That is not idle: the
// many-clients load (2,000 clients, a Search a second each) is quiet, and the drops and
// trims run during it, their faults and collection paid by the calls of that moment.
// So may Search at full rate be, which since streams are used again allocates about its
// live heap a second: a drop is a millisecond or two of faults every pagesEvery, and a
// trim needs a heap kept well above its target, which a steady load does not leave.
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
	// pagesEvery: while quiet, the executable's pages are dropped this often, so the
	// resident set counts the code and tables in use, not those a burst or the start
	// touched once. The pages in use come back at the next access, 64 KiB per minor
	// fault: about 300 faults, a millisecond or two of CPU, per drop.
	pagesEvery = 10 * time.Second
)

// trimmer gives back what a burst left behind (above). TuneGC's goroutine only.
type trimmer struct {
	lastHeap, lastPages time.Time
	// peak is the most heap kept at a tick since the last trim: a burst of handshakes
	// lasts a second or two, and the scavenger may have given part of it back by the
	// time the balancer is quiet again.
	peak        uint64
	read        func() (kept, goal uint64) // the heap kept and the collector's target: readHeap
	releaseHeap func()                     // debug.FreeOSMemory
	dropPages   func()                     // the executable's read-only pages: ReleaseStartupPages
}

func newTrimmer() *trimmer {
	return &trimmer{read: readHeap, releaseHeap: debug.FreeOSMemory, dropPages: func() { _, _, _ = ReleaseStartupPages() }}
}

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
	{Name: "/gc/heap/goal:bytes"},
}

// readHeap reads the heap the process keeps (objects, the unused room of their spans,
// free pages not given back) and the collector's next target. TuneGC's goroutine only.
func readHeap() (kept, goal uint64) {
	metrics.Read(heapSamples)
	s := heapSamples
	return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64(), s[3].Value.Uint64()
}

// tick notes the heap kept; while the balancer is quiet, it drops the executable's pages
// every pagesEvery, and gives the free heap back if the most the heap kept since the
// last time says a burst is over (at most once per trimEvery). It returns whether it
// gave the heap back.
func (t *trimmer) tick(now time.Time, quiet bool) bool {
	kept, goal := t.read()
	t.peak = max(t.peak, kept)
	if !quiet {
		return false
	}
	if now.Sub(t.lastPages) >= pagesEvery {
		t.lastPages = now
		t.dropPages()
	}
	if now.Sub(t.lastHeap) < trimEvery || !burstLeft(t.peak, goal) {
		return false
	}
	t.lastHeap, t.peak = now, 0
	t.releaseHeap()
	return true
}

// burstLeft says whether a heap that kept up to kept bytes, with the collector's next
// target now at goal, was through a burst whose leftovers are worth giving back.
func burstLeft(kept, goal uint64) bool {
	return float64(kept) > trimRatio*float64(goal) && kept-goal > trimMin
}
