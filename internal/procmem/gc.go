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
// next collection, and the resident set stays near that peak. With thousands of idle
// connections (10-11 KiB resident each, most of it live heap: TLS state, HPACK tables)
// that headroom nearly doubles it. When the allocation rate is low, the headroom is what
// about quietSpan seconds of allocation take, between minQuietGC % of the live heap and
// Go's default: idle connections (pings only) run at
// minQuietGC: 10,000 of them held 22.1 KiB each at 25 % and 20.3 KiB at 10 %
// (docs/benchmarks.md). When calls start to allocate, the default comes back within a
// tick, so busy paths pay nothing more.
//
// Why quietSpan is long: a collection marks for 13-17 ms with 22 MB live, and while it
// marks on one thread of Go code (internal/threads chooses one for light load), the
// collector's worker takes a quarter of that thread in slices that grow to a millisecond
// as the mark goes on, so a call that arrives then waits. Many clients each making a call
// now and then (2,000 connections, a Search a second each) allocate about 1.5 MB a second
// on 22 MB live. With four seconds of allocation as the headroom (25-30 %) they collected
// every 2.7-3 s, and p99 was 1.1-1.4 times HAProxy's; with fifteen (Go's default here, a
// collection every 15 s or so, marking a thousandth of the time) 0.91-0.93 times in two
// paired runs, for 1.2-1.3 times the resident set (63-70 against 52-55 MiB; HAProxy's 63;
// docs/benchmarks.md, "Many clients, ninth round"). Fewer collections also cost less CPU
// per call.
//
// Collecting more often costs CPU on every call whatever the heap's size, and keeps
// off the resident set what the lower target saves of the live heap: worth it only
// where that is minSaving or more. Since a connection's streams are used again, Search
// at 21,000 calls/s allocates about 5 MB a second on 5-6 MB live: quiet, but a lower
// target would save less than minSaving, and Go's default took 1.1 % off its CPU per
// call against 50 % (docs/benchmarks.md, "Search per call, seventh round").
const (
	minQuietGC = 10
	busyGC     = 100
	// quietShare: allocating less than this share of the live heap per second is quiet.
	quietShare = 1.0
	// minSaving: a quiet target that keeps less than this off the heap's target (against
	// busyGC's) is not worth its collections.
	minSaving = 8 << 20
	// quietStep rounds the quiet target up to a multiple of it, so that small swings of
	// the rate do not change it every tick.
	quietStep = 5
	// quietSpan: the quiet headroom is what this many seconds of allocation take.
	quietSpan = 15
	gcTick    = time.Second
)

// TuneGC adapts the collector's target to the allocation rate until ctx ends (see
// quietSpan), unless GOGC is set in the environment: then the operator's choice stands.
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
// a live heap (bytes): quiet, the share of the live heap quietSpan seconds of allocation
// take, rounded up to quietStep, at least minQuietGC and at most Go's default; busy, or
// quiet with a heap too small for the lower target to save minSaving, Go's default.
func gcPercentFor(rate, live float64) int {
	if !quiet(rate, live) {
		return busyGC
	}
	p := int(math.Ceil(100*quietSpan*rate/live/quietStep)) * quietStep
	p = min(busyGC, max(minQuietGC, p))
	if float64(busyGC-p)/100*live < minSaving {
		return busyGC
	}
	return p
}

// quiet reports an allocation rate (bytes per second) below quietShare of the live heap
// (bytes) a second: what the trims wait for, and the quiet target may apply to.
func quiet(rate, live float64) bool { return rate < quietShare*live }
