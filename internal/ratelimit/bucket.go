package ratelimit

import "sync"

// bucket is one token bucket: it holds up to capacity tokens and gains rate tokens per
// second. Safe for concurrent use.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   int64 // when tokens was last brought up to date, in Clock nanoseconds
}

// refill brings b up to date at now; b.mu must be held.
func (b *bucket) refill(now int64, rate, capacity float64) {
	if d := now - b.last; d > 0 {
		b.tokens = min(capacity, b.tokens+float64(d)*rate/1e9)
		b.last = now
	}
}

// take removes cost tokens if the bucket holds them. A cost larger than the bucket (a
// write bigger than a burst of bytes) is taken from a full bucket, which then owes the
// rest: the long-run rate holds, and no message is refused forever for its size alone.
func (b *bucket) take(now int64, rate, capacity, cost float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now, rate, capacity)
	if b.tokens < min(cost, capacity) {
		return false
	}
	b.tokens -= cost
	return true
}

// give returns tokens taken for a call that another limit then refused.
func (b *bucket) give(cost, capacity float64) {
	b.mu.Lock()
	b.tokens = min(capacity, b.tokens+cost)
	b.mu.Unlock()
}

// full reports whether b is full at now: forgetting it would change nothing.
func (b *bucket) full(now int64, rate, capacity float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now, rate, capacity)
	return b.tokens >= capacity
}

// perKey tells apart the buckets of a limit with per keys; the fields not in per are
// left empty.
type perKey struct {
	user, database, collection string
	class                      int8
}

// maxBuckets bounds the buckets one limit keeps per distinct key: user, database and
// collection names come from clients. Past it, full buckets are forgotten; if none is,
// new keys share one bucket, which limits them together rather than not at all.
const maxBuckets = 10000

// sweepEvery is how often, at most, a limit at maxBuckets looks for full buckets.
const sweepEvery = int64(1e9)

// buckets is one rate of one limit: one bucket, or one per key. Safe for concurrent use.
type buckets struct {
	rate, capacity float64 // per second; at most
	keyed          bool
	one            bucket // the bucket when not keyed, and the overflow when keyed
	mu             sync.Mutex
	m              map[perKey]*bucket
	swept          int64 // when full buckets were last looked for (Clock)
}

func newBuckets(rate, capacity float64, keyed bool, now int64) *buckets {
	bs := &buckets{rate: rate, capacity: capacity, keyed: keyed}
	bs.one = bucket{tokens: capacity, last: now}
	if keyed {
		bs.m = map[perKey]*bucket{}
	}
	return bs
}

// get returns the bucket for k, making a full one for a new key.
func (bs *buckets) get(k perKey, now int64) *bucket {
	if !bs.keyed {
		return &bs.one
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.m[k]; b != nil {
		return b
	}
	if len(bs.m) >= maxBuckets {
		// At most once a second: a client making up names must not make every call look
		// through all the buckets.
		if now-bs.swept >= sweepEvery {
			bs.swept = now
			for key, b := range bs.m {
				if b.full(now, bs.rate, bs.capacity) {
					delete(bs.m, key)
				}
			}
		}
		if len(bs.m) >= maxBuckets {
			return &bs.one
		}
	}
	b := &bucket{tokens: bs.capacity, last: now}
	bs.m[k] = b
	return b
}
