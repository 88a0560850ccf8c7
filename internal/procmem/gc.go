package procmem

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The collector's target while the balancer allocates little, and while it allocates
// much. Go's default, GOGC=100, lets the heap grow to twice what is live before the
// next collection, and the resident set stays near that peak: with thousands of idle
// connections (about 14 KiB of live heap each: TLS state, buffers, HPACK tables) half of
// the resident set is headroom that only a collection would free. When the allocation
// rate is low, the headroom is what about quietSpan seconds of allocation take, between
// minQuietGC and quietGC % of the live heap: a collection every few seconds, so little
// CPU, and the rest goes back to the system. Idle connections (pings only) run at
// minQuietGC: 10,000 of them held 22.1 KiB each at 25 % and 20.3 KiB at 10 %
// (docs/benchmarks.md). When calls start to allocate, the default comes back within a
// tick, so busy paths pay nothing more.
//
// Many clients each making a call now and then (2,000 connections, a Search a second
// each) allocate a sixteenth to a half of the live heap a second (each call's frames,
// and what a connection that parks lets go of), so the target is 25-50 % (against 100
// before, docs/benchmarks.md, "Memory, third round"). Since crypto/tls's buffers are lent
// only while a connection reads (internal/tlsbuf), they keep a third less live (27
// against 40 MB); where they allocate more, the target stays at quietGC, rather than
// going back to Go's default, which made the heap twice what is live again
// (docs/benchmarks.md, "Many clients, fourth round": 68-70 against 84-86 MiB resident).
//
// Why seconds, not one: a collection marks for 13-17 ms with 25 MB live, and on two
// cores the goroutines made runnable meanwhile wait for the mark workers. In an
// execution trace of many clients, 86 of the 102 scheduling delays over a millisecond
// (in 6 s) fell in the 1.1 % of the time spent marking. A collection a second puts 1-2 %
// of the calls in a mark, which is p99. With four seconds of allocation that workload
// collected 0.35 times a second against 0.76, marking 0.60 % of the time against 1.22 %
// (docs/benchmarks.md, "Many clients, seventh round").
//
// Collecting more often costs CPU on every call whatever the heap's size, and keeps
// off the resident set what the lower target saves of the live heap: worth it only
// where that is minSaving or more. Since a connection's streams are used again, Search
// at 21,000 calls/s allocates about 5 MB a second on 5-6 MB live, so it was "quiet" and
// collected at 50 % to save about 3 MB; Go's default took 1.1 % off its CPU per call
// (docs/benchmarks.md, "Search per call, seventh round"). Many clients keep about
// 29 MB live and save 20 MB or more.
const (
	minQuietGC = 10
	quietGC    = 50
	busyGC     = 100
	// quietShare: allocating less than this share of the live heap per second is quiet
	// (the next collection at quietGC is then at least half a second away).
	quietShare = 1.0
	// minSaving: a quiet target that keeps less than this off the heap's target (against
	// busyGC's) is not worth its collections.
	minSaving = 8 << 20
	// quietStep rounds the quiet target up to a multiple of it, so that small swings of
	// the rate do not change it every tick.
	quietStep = 5
	// quietSpan: the quiet headroom is what this many seconds of allocation take.
	quietSpan = 4
	gcTick    = time.Second
)

// TuneGC adapts the collector's target to the allocation rate until ctx ends (see
// quietGC), unless GOGC is set in the environment: then the operator's choice stands.
func TuneGC(ctx context.Context) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(samples)
	lastAlloc, last := samples[0].Value.Uint64(), time.Now()
	current := busyGC
	trim := newTrimmer()
	t := time.NewTicker(gcTick)
	defer t.Stop()
	defer debug.SetGCPercent(busyGC)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			metrics.Read(samples)
			alloc, live := samples[0].Value.Uint64(), samples[1].Value.Uint64()
			rate := float64(alloc-lastAlloc) / now.Sub(last).Seconds()
			lastAlloc, last = alloc, now
			if p := gcPercentFor(rate, float64(live)); p != current {
				debug.SetGCPercent(p)
				current = p
			}
			trim.tick(now, quiet(rate, float64(live)))
		}
	}
}

// gcPercentFor is the collector's target for an allocation rate (bytes per second) and
// a live heap (bytes): quiet, the share of the live heap quietSpan seconds of allocation take,
// rounded up to quietStep, at least minQuietGC; busy, or quiet with a heap too small for
// the lower target to save minSaving, Go's default.
func gcPercentFor(rate, live float64) int {
	if !quiet(rate, live) {
		return busyGC
	}
	p := int(math.Ceil(100*quietSpan*rate/live/quietStep)) * quietStep
	p = min(quietGC, max(minQuietGC, p))
	if float64(busyGC-p)/100*live < minSaving {
		return busyGC
	}
	return p
}

// quiet reports an allocation rate (bytes per second) below quietShare of the live heap
// (bytes) a second: what the trims wait for, and the quiet target may apply to.
func quiet(rate, live float64) bool { return rate < quietShare*live }
