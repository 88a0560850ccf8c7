package procmem

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The collector's target while the balancer allocates little, and while it allocates
// much. Go's default, GOGC=100, lets the heap grow to twice what is live before the
// next collection, and the resident set stays near that peak: with thousands of idle
// connections (about 13 KiB of live heap each: TLS state, buffers, HPACK tables) half of
// the resident set is headroom that only a collection would free. When the allocation
// rate is low, a collection at 25 % headroom costs at most about one collection a second
// (quietGC), so little CPU, and the headroom goes back to the system; when calls start
// to allocate, the default comes back within a tick, so busy paths pay nothing more.
const (
	quietGC = 25
	busyGC  = 100
	// quietShare: allocating less than this share of the live heap per second is quiet
	// (the next collection at quietGC is then at least a second away).
	quietShare = 0.25
	gcTick     = time.Second
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
		}
	}
}

// gcPercentFor is the collector's target for an allocation rate (bytes per second) and
// a live heap (bytes).
func gcPercentFor(rate, live float64) int {
	if rate < quietShare*live {
		return quietGC
	}
	return busyGC
}
