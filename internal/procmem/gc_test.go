package procmem

import "testing"

// TestGCPercentFor: a balancer that allocates less than its live heap a second collects
// when about four seconds of allocation have filled the headroom, with 10 % at least and
// 50 % at most; a busy one at Go's default, and so is one whose live heap is too small
// for that to save 8 MiB.
func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		rate, live float64
		want       int
	}{
		{0, 100 * mib, minQuietGC},       // idle connections, pings only
		{2 * mib, 100 * mib, minQuietGC}, // a few calls a second: 8 %
		{3 * mib, 100 * mib, 15},         // more: four seconds of allocation, rounded up to 5 %
		{1.5 * mib, 24 * mib, 25},        // many clients whose parked connections share their streams
		{24 * mib, 100 * mib, quietGC},   // many clients making calls now and then
		{49 * mib, 100 * mib, quietGC},   // many clients
		{80 * mib, 100 * mib, quietGC},   // many clients with less live (tlsbuf): still 50 %
		{100 * mib, 100 * mib, busyGC},   // calls allocate: the default
		{200 * mib, 20 * mib, busyGC},    // a busy relay with little live
		{5 * mib, 6 * mib, busyGC},       // Search: 50 % would save 3 MiB
		{0, 8 * mib, busyGC},             // a small idle balancer: 10 % would save 7.2 MiB
		{0, 9 * mib, minQuietGC},         // ... 8.1 MiB
		{5 * mib, 25 * mib, quietGC},     // many clients: 50 % saves 12.5 MiB
	} {
		if got := gcPercentFor(c.rate, c.live); got != c.want {
			t.Errorf("%.0f MiB/s with %.0f MiB live: GOGC %d, want %d", c.rate/mib, c.live/mib, got, c.want)
		}
	}
}
