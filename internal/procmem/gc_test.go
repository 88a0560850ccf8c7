package procmem

import "testing"

// TestGCPercentFor: a balancer that allocates less than its live heap a second collects
// when about a second of allocation has filled the headroom, with 10 % at least and 50 %
// at most (at most two collections a second); a busy one at Go's default.
func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		rate, live float64
		want       int
	}{
		{0, 100 * mib, minQuietGC},     // idle connections, pings only
		{5 * mib, 100 * mib, 10},       // a few calls a second
		{12 * mib, 100 * mib, 15},      // more: a second of allocation, rounded up to 5 %
		{24 * mib, 100 * mib, 25},      // many clients making calls now and then
		{49 * mib, 100 * mib, quietGC}, // many clients
		{80 * mib, 100 * mib, quietGC}, // many clients with less live (tlsbuf): still 50 %
		{100 * mib, 100 * mib, busyGC}, // calls allocate: the default
		{200 * mib, 20 * mib, busyGC},  // a busy relay with little live
	} {
		if got := gcPercentFor(c.rate, c.live); got != c.want {
			t.Errorf("%.0f MiB/s with %.0f MiB live: GOGC %d, want %d", c.rate/mib, c.live/mib, got, c.want)
		}
	}
}
