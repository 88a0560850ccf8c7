package procmem

import "testing"

// TestGCPercentFor: a balancer that allocates less than its live heap a second collects
// when about fifteen seconds of allocation have filled the headroom, with 10 % at least
// and Go's default at most; a busy one at Go's default, and so is one whose live heap is
// too small for the lower target to save 8 MiB.
func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		rate, live float64
		want       int
	}{
		{0, 100 * mib, minQuietGC},         // idle connections, pings only
		{0.5 * mib, 100 * mib, minQuietGC}, // pings: 7.5 %
		{1 * mib, 100 * mib, 15},           // a few calls a second
		{2.1 * mib, 100 * mib, 35},         // more: fifteen seconds of allocation, rounded up to 5 %
		{4 * mib, 100 * mib, 60},           // 40 % saves 40 MiB
		{1.5 * mib, 22 * mib, busyGC},      // many clients: a collection every 15 s or so
		{24 * mib, 100 * mib, busyGC},      // many clients, more live
		{1.5 * mib, 60 * mib, 40},          // idle connections in thousands, a few calling
		{100 * mib, 100 * mib, busyGC},     // calls allocate: the default
		{200 * mib, 20 * mib, busyGC},      // a busy relay with little live
		{5 * mib, 6 * mib, busyGC},         // Search: too little live to save 8 MiB
		{0, 8 * mib, busyGC},               // a small idle balancer: 10 % would save 7.2 MiB
		{0, 9 * mib, minQuietGC},           // ... 8.1 MiB
		{4.5 * mib, 100 * mib, 70},         // 30 % saves 30 MiB
		{0.5 * mib, 10 * mib, busyGC},      // 75 % would save 2.5 MiB
	} {
		if got := gcPercentFor(c.rate, c.live); got != c.want {
			t.Errorf("%.1f MiB/s with %.0f MiB live: GOGC %d, want %d", c.rate/mib, c.live/mib, got, c.want)
		}
	}
}
