// Package threads sets how many threads run Go code (GOMAXPROCS) by the process's load:
// as many as the cores while the balancer needs them, fewer while it uses a small share
// of them.
//
// Why: Go's scheduler hands work that becomes ready to an idle thread, waking it, even
// when the thread running would reach it a moment later. A balancer's work comes as many
// small pieces (a call's frames read, the backend's reply written), and on cores it
// shares with other busy processes (Milvus, a client, on a small node) those wake-ups and
// the threads' search for work cost more than the calls' own work. On the benchmark's
// two cores, one thread of Go code took milvus-lb's CPU per Search call to 0.76× and its
// calls/s to 1.09× (docs/benchmarks.md, "The HTTP/2 floor under Search"). But one thread
// serves one core: 3 MiB inserts, which keep a thread decrypting and copying for a long
// time, moved 0.92× the messages/s on it, the others' calls waiting. So the number
// follows the load, and goroutines that wait to run bring threads back at once.
//
// Unless GOMAXPROCS is set in the environment: then the operator's choice stands.
package threads

import (
	"math"
	"time"
)

const (
	// tick: how often the load is read and the number chosen. Short, so that load
	// arriving at a balancer on one thread finds more within about two ticks (the first
	// may be mostly idle); long against the kernel's accounting of CPU time, in steps of
	// a few milliseconds where it samples at its timer tick.
	tick = 100 * time.Millisecond
	// busyShare: above this share of its threads' time in use, the process gets twice
	// the threads, up to the cores (GOMAXPROCS's default).
	busyShare = 0.6
	// calmShare: fewer threads once the CPU in use would keep each below this share
	// (hysteresis against busyShare: a process just under busy at one thread is not
	// brought down to it), for calmTicks in a row.
	calmShare = 0.5
	calmTicks = 20 // 2 s
	// slowWait: when 10 % of the goroutines made runnable waited longer than this to
	// run, the threads are too few whatever the CPU says: more at once, and, unless the
	// CPU in use was busy too (then it tells when fewer are enough again), none fewer for
	// a while. Under Search one thread keeps the 90th percentile near 0.1-0.2 ms; under 3
	// MiB inserts it reaches 3 ms, two threads 1-2 ms.
	slowWait = time.Millisecond
	// minSamples: the runtime samples goroutines' waits; fewer than this in a tick say
	// nothing about the 90th percentile.
	minSamples = 16
	// holdBase, holdMax: after threads were added for slow waits, no fewer for holdBase;
	// twice as long each time it happens again within recurWithin of the last hold's
	// end, up to holdMax. The base is short because a burst is over in a second or two
	// (2,000 clients connecting made a tenth of the waits 6-10 ms at 0.3-0.5 of a core:
	// their handshakes); a load that is slow on fewer threads for good makes the hold
	// grow to minutes within a few tries.
	holdBase    = 2 * time.Second
	holdMax     = 5 * time.Minute
	recurWithin = 30 * time.Second
)

// load is what the process did over one tick.
type load struct {
	cpu  float64       // cores in use (user and system time over the tick's length)
	wait time.Duration // the 90th percentile of runnable goroutines' waits; 0 if unknown
}

// controller chooses the number of threads, tick after tick. It is pure: Run reads the
// process and applies what next returns.
type controller struct {
	procs, max int
	calm       int // ticks in a row calm enough for fewer threads
	hold       time.Duration
	holdUntil  time.Time // no fewer threads before this; zero before the first hold
}

func newController(max int) *controller {
	return &controller{procs: max, max: max, hold: holdBase}
}

// next is the number of threads after a tick with load l, ending at now.
func (c *controller) next(now time.Time, l load) int {
	busy := l.cpu > busyShare*float64(c.procs)
	slow := l.wait > slowWait
	if (busy || slow) && c.procs < c.max {
		c.procs = min(c.max, 2*c.procs)
		c.calm = 0
		if slow && !busy {
			c.holdAfterSlow(now)
		}
		return c.procs
	}
	want := max(1, int(math.Ceil(l.cpu/calmShare)))
	if want >= c.procs || slow || now.Before(c.holdUntil) {
		c.calm = 0
		return c.procs
	}
	if c.calm++; c.calm >= calmTicks {
		c.procs, c.calm = want, 0
	}
	return c.procs
}

// holdAfterSlow keeps the threads added at now for slow waits: holdBase, or twice the
// last hold if that ended less than recurWithin ago.
func (c *controller) holdAfterSlow(now time.Time) {
	if !c.holdUntil.IsZero() && now.Sub(c.holdUntil) < recurWithin {
		c.hold = min(holdMax, 2*c.hold)
	} else {
		c.hold = holdBase
	}
	c.holdUntil = now.Add(c.hold)
}
