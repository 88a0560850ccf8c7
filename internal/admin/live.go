package admin

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Live keeps the last minute of calls for the admin page: for every method and every
// endpoint, the calls, the failed calls (call.Record.Failed) and a latency histogram of
// each second, and the most recent failed calls. It is a call.Observer: Observe runs on
// the data path, takes no lock but once per second and series (to reuse a slot), and
// allocates only for a failed call. Safe for concurrent use.
type Live struct {
	start     time.Time
	methods   seriesSet
	endpoints seriesSet
	// cache counts, by backend, the calls to methods a reply cache serves: a series'
	// "failed" count is its hits (answered from the cache).
	cache seriesSet

	failures    [failureRing]atomic.Pointer[call.Record]
	nextFailure atomic.Uint64
}

const (
	// liveWindow is how many seconds the view sums, the current one included.
	liveWindow = 60
	// liveSlots is the ring of per-second slots: more than the window, so a slot is
	// reused only after its second has left the view.
	liveSlots = 64
	// maxSeries bounds the methods (REST paths are the client's to choose) and the
	// endpoints kept; any more are counted together as otherSeries. Each takes 52 KB.
	maxSeries   = 128
	otherSeries = "_other"
	// failureRing is how many recent failed calls are kept.
	failureRing = 32
)

// NewLive returns an empty view; its rates count from now.
func NewLive() *Live { return &Live{start: time.Now()} }

// Observe counts a finished call (call.Observer).
func (l *Live) Observe(r *call.Record) {
	end := r.Start.Add(r.Duration)
	if r.Start.IsZero() {
		end = time.Now()
	}
	sec, failed := end.Unix(), r.Failed()
	l.methods.get(r.Method).add(sec, r.Duration, failed)
	if r.Endpoint != "" {
		l.endpoints.get(r.Endpoint).add(sec, r.Duration, failed)
	}
	if r.Cache != "" {
		l.cache.get(r.Backend).add(sec, r.Duration, r.Cache == call.CacheHit)
	}
	if failed {
		rec := *r
		rec.Start = end.Add(-r.Duration)
		l.failures[(l.nextFailure.Add(1)-1)%failureRing].Store(&rec)
	}
}

// RecordFields implements call.FieldsObserver: the recent failures show the database and
// collection.
func (l *Live) RecordFields() milvus.Fields { return milvus.FieldNames }

// slot is one second of one series.
type slot struct {
	mu      sync.Mutex   // taken only to reuse the slot for a new second
	sec     atomic.Int64 // the unix second counted here
	calls   atomic.Int64
	failed  atomic.Int64
	latency [latencyBuckets]atomic.Int64
}

// series is the ring of seconds of one method or endpoint.
type series struct {
	slots [liveSlots]slot
}

func (s *series) add(sec int64, d time.Duration, failed bool) {
	sl := &s.slots[uint64(sec)%liveSlots]
	if sl.sec.Load() != sec {
		sl.reuse(sec)
	}
	sl.calls.Add(1)
	if failed {
		sl.failed.Add(1)
	}
	sl.latency[latencyBucket(d)].Add(1)
}

// reuse zeroes the slot for sec. Its counts belong to a second 64 s old, out of the view;
// the second is stored last, so a reader or writer that sees sec sees zeroed counts.
func (sl *slot) reuse(sec int64) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.sec.Load() >= sec {
		return // done by another caller meanwhile
	}
	sl.calls.Store(0)
	sl.failed.Store(0)
	for i := range sl.latency {
		sl.latency[i].Store(0)
	}
	sl.sec.Store(sec)
}

// seriesSet maps names to series: a copy-on-write map, so a lookup takes no lock.
type seriesSet struct {
	m  atomic.Pointer[map[string]*series]
	mu sync.Mutex // serializes additions
}

func (s *seriesSet) get(name string) *series {
	if m := s.m.Load(); m != nil {
		if x := (*m)[name]; x != nil {
			return x
		}
	}
	return s.add(name)
}

func (s *seriesSet) add(name string) *series {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[string]*series
	if p := s.m.Load(); p != nil {
		old = *p
	}
	if len(old) >= maxSeries {
		name = otherSeries
	}
	if x := old[name]; x != nil {
		return x
	}
	m := make(map[string]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	x := &series{}
	m[name] = x
	s.m.Store(&m)
	return x
}

func (s *seriesSet) all() map[string]*series {
	if p := s.m.Load(); p != nil {
		return *p
	}
	return nil
}

// CallStats are one method's or endpoint's calls over the view's window.
type CallStats struct {
	Name      string  `json:"name"`
	Calls     int64   `json:"calls"`
	Failed    int64   `json:"failed"`
	Rate      float64 `json:"rate"`      // calls per second
	ErrorRate float64 `json:"errorRate"` // failed / calls, 0 when no calls
	P50Ms     float64 `json:"p50Ms"`
	P99Ms     float64 `json:"p99Ms"`
}

// LiveCalls is the view of the last minute of calls.
type LiveCalls struct {
	// WindowSeconds is the time the rates are over: a minute, or less just after start.
	WindowSeconds float64     `json:"windowSeconds"`
	Total         CallStats   `json:"total"`
	Methods       []CallStats `json:"methods"` // busiest first
	Endpoints     []CallStats `json:"endpoints"`
	// PerSecond are the calls and failed calls of each of the last 60 seconds, oldest
	// first; the last is the current second, still counting.
	PerSecond struct {
		Calls  []int64 `json:"calls"`
		Failed []int64 `json:"failed"`
	} `json:"perSecond"`
	Failures []FailedCall `json:"failures"` // newest first
	// Cache is, by backend, the calls to methods a reply cache serves and its hits.
	Cache map[string]CacheStats `json:"cache,omitempty"`
}

// CacheStats are a backend's calls that a reply cache could answer, over the window.
type CacheStats struct {
	Calls    int64   `json:"calls"` // hits, misses and bypassed calls
	Hits     int64   `json:"hits"`
	HitRatio float64 `json:"hitRatio"`
}

// Calls reads the view at now.
func (l *Live) Calls(now time.Time) LiveCalls {
	v := LiveCalls{WindowSeconds: min(max(now.Sub(l.start).Seconds(), 1), liveWindow)}
	v.PerSecond.Calls = make([]int64, liveWindow)
	v.PerSecond.Failed = make([]int64, liveWindow)
	var total window
	for name, s := range l.methods.all() {
		w := s.window(now.Unix(), v.PerSecond.Calls, v.PerSecond.Failed)
		total.merge(&w)
		if w.calls > 0 {
			v.Methods = append(v.Methods, w.stats(name, v.WindowSeconds))
		}
	}
	v.Total = total.stats("all", v.WindowSeconds)
	for name, s := range l.endpoints.all() {
		if w := s.window(now.Unix(), nil, nil); w.calls > 0 {
			v.Endpoints = append(v.Endpoints, w.stats(name, v.WindowSeconds))
		}
	}
	busiest := func(a, b CallStats) int { return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Name, b.Name)) }
	slices.SortFunc(v.Methods, busiest)
	slices.SortFunc(v.Endpoints, busiest)
	v.Failures = l.recentFailures()
	for backend, s := range l.cache.all() {
		if w := s.window(now.Unix(), nil, nil); w.calls > 0 {
			if v.Cache == nil {
				v.Cache = map[string]CacheStats{}
			}
			v.Cache[backend] = CacheStats{Calls: w.calls, Hits: w.failed, HitRatio: float64(w.failed) / float64(w.calls)}
		}
	}
	return v
}

// window is a series summed over the view's seconds.
type window struct {
	calls, failed int64
	latency       [latencyBuckets]int64
}

// window sums the slots of the last liveWindow seconds up to now, adding each second's
// counts to perCalls and perFailed (oldest first) when they are given.
func (s *series) window(now int64, perCalls, perFailed []int64) window {
	var w window
	for i := range int64(liveWindow) {
		sec := now - liveWindow + 1 + i
		sl := &s.slots[uint64(sec)%liveSlots]
		if sl.sec.Load() != sec {
			continue
		}
		c, f := sl.calls.Load(), sl.failed.Load()
		w.calls += c
		w.failed += f
		for j := range sl.latency {
			w.latency[j] += sl.latency[j].Load()
		}
		if perCalls != nil {
			perCalls[i] += c
			perFailed[i] += f
		}
	}
	return w
}

func (w *window) merge(o *window) {
	w.calls += o.calls
	w.failed += o.failed
	for i := range w.latency {
		w.latency[i] += o.latency[i]
	}
}

func (w *window) stats(name string, seconds float64) CallStats {
	st := CallStats{Name: name, Calls: w.calls, Failed: w.failed, Rate: float64(w.calls) / seconds}
	if w.calls > 0 {
		st.ErrorRate = float64(w.failed) / float64(w.calls)
	}
	// The histogram may hold a call or two more than calls (a writer between the loads).
	var n int64
	for _, c := range w.latency {
		n += c
	}
	st.P50Ms = ms(percentile(&w.latency, n, 0.50))
	st.P99Ms = ms(percentile(&w.latency, n, 0.99))
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
