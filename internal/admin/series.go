package admin

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// seriesKey is every label value one call's metrics carry.
type seriesKey struct {
	backend, method, code, mcode, db, coll string
	endpoint, result                       string // "" when no endpoint was picked
	cache                                  string // Record.Cache of a gRPC call ("" for REST: see observeCache)
}

// callSeries are one key's series, looked up once: a vector's WithLabelValues hashes and
// checks every label value on each call (four of them took about 0.8 µs per call).
type callSeries struct {
	gen        uint64 // the generation the series were looked up in
	requests   prometheus.Counter
	duration   prometheus.Observer
	epRequests prometheus.Counter  // nil without an endpoint
	epDuration prometheus.Observer // nil without an endpoint
	cache      prometheus.Counter  // cache_requests_total; nil when key.cache is ""
}

// seriesCache holds the callSeries of the keys seen. Deleting series from a vector
// (an endpoint that left) must call drop, which starts a new generation: a series looked
// up before it may be a deleted one, which would count into nothing.
type seriesCache struct {
	mu  sync.RWMutex
	m   map[seriesKey]*callSeries
	gen atomic.Uint64
}

// get returns k's series, looking them up with lookup when they are not cached.
func (c *seriesCache) get(k seriesKey, lookup func(seriesKey) *callSeries) *callSeries {
	gen := c.gen.Load()
	c.mu.RLock()
	s := c.m[k]
	c.mu.RUnlock()
	if s != nil && s.gen == gen {
		return s
	}
	s = lookup(k)
	s.gen = gen
	c.mu.Lock()
	if c.m == nil {
		c.m = map[seriesKey]*callSeries{}
	}
	c.m[k] = s
	c.mu.Unlock()
	return s
}

// drop forgets every series; call it after deleting series from the vectors.
func (c *seriesCache) drop() {
	c.gen.Add(1)
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
