package admin

import (
	"math/bits"
	"time"
)

// A latency histogram of quarter-octave buckets: each bucket's upper bound is 2^(1/4)
// (19 %) above its lower one, so a percentile read from it is within 10 % of the truth,
// from 8 µs to 2^37 ns (137 s). Finding a bucket is a few integer operations, cheap
// enough for every call.
const (
	latencyMinShift = 13                       // bucket 0 holds everything under 2^13 ns (8.2 µs)
	latencyOctaves  = 24                       // 2^13 .. 2^37 ns
	latencyBuckets  = 1 + latencyOctaves*4 + 1 // under, the octaves, over
	latencyOver     = latencyBuckets - 1       // 137 s and more
	latencyMax      = time.Duration(1) << (latencyMinShift + latencyOctaves)
)

// latencyBucket returns the bucket of d.
func latencyBucket(d time.Duration) int {
	n := uint64(max(d, 0))
	if n < 1<<latencyMinShift {
		return 0
	}
	e := bits.Len64(n) - 1 // 2^e <= n < 2^(e+1)
	q := int(n>>(e-2)) & 3 // which quarter of the octave (the two bits after the top one)
	return min(1+(e-latencyMinShift)*4+q, latencyOver)
}

// latencyBounds returns the range of bucket i: [lo, hi).
func latencyBounds(i int) (lo, hi time.Duration) {
	switch {
	case i == 0:
		return 0, 1 << latencyMinShift
	case i >= latencyOver:
		return latencyMax, latencyMax
	}
	e, q := latencyMinShift+(i-1)/4, (i-1)%4
	return time.Duration(4+q) << (e - 2), time.Duration(5+q) << (e - 2)
}

// percentile reads the p-th percentile (0 < p < 1) from bucket counts whose sum is
// total, interpolating within the bucket it falls in. It is 0 when total is.
func percentile(h *[latencyBuckets]int64, total int64, p float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := p * float64(total)
	var seen int64
	for i, n := range h {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		lo, hi := latencyBounds(i)
		frac := (rank - float64(seen)) / float64(n)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	lo, _ := latencyBounds(latencyOver)
	return lo
}
