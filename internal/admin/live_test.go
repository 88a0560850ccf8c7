package admin

import (
	"math"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

func TestLatencyBuckets(t *testing.T) {
	prev := -1
	for d := time.Duration(1); d < 200*time.Second; d = d*11/10 + 1 {
		i := latencyBucket(d)
		if i < prev {
			t.Fatalf("latencyBucket(%v) = %d, below the bucket of a shorter time (%d)", d, i, prev)
		}
		prev = i
		lo, hi := latencyBounds(i)
		if i < latencyOver && (d < lo || d >= hi) {
			t.Fatalf("latencyBucket(%v) = %d, whose range is [%v, %v)", d, i, lo, hi)
		}
	}
	if latencyBucket(-time.Second) != 0 || latencyBucket(time.Hour) != latencyOver {
		t.Error("out-of-range times are not kept in the end buckets")
	}
}

// A percentile read from the histogram is within a bucket's width (19 %) of the exact one.
func TestPercentile(t *testing.T) {
	var h [latencyBuckets]int64
	var n int64
	for i := 1; i <= 1000; i++ {
		h[latencyBucket(time.Duration(i)*time.Millisecond)]++ // 1 ms .. 1 s, evenly
		n++
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.01, 10 * time.Millisecond}} {
		got := percentile(&h, n, tt.p)
		if math.Abs(float64(got-tt.want))/float64(tt.want) > 0.19 {
			t.Errorf("p%v = %v, want about %v", tt.p*100, got, tt.want)
		}
	}
	if got := percentile(&[latencyBuckets]int64{}, 0, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func rec(method, endpoint string, end time.Time, d time.Duration, code codes.Code) *call.Record {
	return &call.Record{Start: end.Add(-d), Duration: d, GRPC: true, Method: method, Endpoint: endpoint, Code: code}
}

func TestLiveCounts(t *testing.T) {
	l := NewLive()
	l.start = time.Now().Add(-2 * time.Minute) // rates over a whole minute
	now := time.Now()
	for i := range 30 {
		l.Observe(rec("Search", "10.0.0.1:19530", now.Add(-time.Duration(i)*time.Second), 4*time.Millisecond, codes.OK))
	}
	for range 10 {
		l.Observe(rec("Insert", "10.0.0.2:19530", now, 20*time.Millisecond, codes.OK))
	}
	l.Observe(rec("Insert", "10.0.0.2:19530", now, time.Millisecond, codes.ResourceExhausted))
	failedMilvus := rec("Query", "10.0.0.1:19530", now, time.Millisecond, codes.OK)
	failedMilvus.MilvusCode, failedMilvus.MilvusReason = 65535, "collection not found"
	l.Observe(failedMilvus)
	// Two minutes ago: out of the window.
	l.Observe(rec("Search", "10.0.0.1:19530", now.Add(-2*time.Minute), time.Millisecond, codes.Internal))

	v := l.Calls(now)
	if v.Total.Calls != 42 || v.Total.Failed != 2 {
		t.Errorf("total %d calls, %d failed; want 42, 2", v.Total.Calls, v.Total.Failed)
	}
	want := map[string][2]int64{"Search": {30, 0}, "Insert": {11, 1}, "Query": {1, 1}}
	if len(v.Methods) != len(want) || v.Methods[0].Name != "Search" {
		t.Errorf("methods %+v, want Search, Insert, Query, busiest first", v.Methods)
	}
	for _, m := range v.Methods {
		if w := want[m.Name]; m.Calls != w[0] || m.Failed != w[1] {
			t.Errorf("%s: %d calls, %d failed; want %d, %d", m.Name, m.Calls, m.Failed, w[0], w[1])
		}
	}
	if s := v.Methods[0]; s.Rate != 0.5 || s.P50Ms < 3.5 || s.P50Ms > 4.5 {
		t.Errorf("Search: rate %v, p50 %v ms; want 0.5/s, about 4 ms", s.Rate, s.P50Ms)
	}
	if len(v.Endpoints) != 2 || v.Endpoints[0].Name != "10.0.0.1:19530" || v.Endpoints[0].Calls != 31 {
		t.Errorf("endpoints %+v, want 10.0.0.1:19530 with 31 calls first", v.Endpoints)
	}
	if got := v.PerSecond.Calls[liveWindow-1]; got != 13 {
		t.Errorf("calls in the current second %d, want 13", got)
	}
	if len(v.Failures) != 3 || v.Failures[0].Method == "Search" || v.Failures[2].Method != "Search" {
		t.Errorf("failures %+v, want the two of now first and the old one last", v.Failures)
	}
	for _, f := range v.Failures {
		if f.Method == "Query" && (f.MilvusCode != 65535 || f.MilvusReason != "collection not found" || f.GRPCStatus != "OK") {
			t.Errorf("Milvus failure %+v", f)
		}
	}
}

// A slot is reused for the second 64 s later, and only its new counts show.
func TestLiveReusesSlots(t *testing.T) {
	l := NewLive()
	t0 := time.Unix(1_800_000_000, 0)
	l.Observe(rec("Search", "", t0, time.Millisecond, codes.OK))
	t1 := t0.Add(liveSlots * time.Second)
	l.Observe(rec("Search", "", t1, time.Millisecond, codes.OK))
	if v := l.Calls(t1); v.Total.Calls != 1 {
		t.Errorf("%d calls counted at t0+64s, want 1 (t0's are gone)", v.Total.Calls)
	}
	if v := l.Calls(t1.Add(2 * liveWindow * time.Second)); v.Total.Calls != 0 || len(v.Methods) != 0 {
		t.Errorf("two minutes later: %+v, want nothing", v.Total)
	}
}

// Names beyond maxSeries are counted together, so a client's made-up REST paths cannot
// grow the view without bound.
func TestLiveBoundsSeries(t *testing.T) {
	l := NewLive()
	now := time.Now()
	for i := range maxSeries + 10 {
		l.Observe(&call.Record{Start: now, Method: "/v2/x/" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Status: 404})
	}
	v := l.Calls(now)
	if len(v.Methods) != maxSeries+1 {
		t.Errorf("%d methods, want %d and %s", len(v.Methods), maxSeries, otherSeries)
	}
	if v.Methods[0].Name != otherSeries || v.Methods[0].Calls != 10 {
		t.Errorf("busiest %+v, want %s with 10 calls", v.Methods[0], otherSeries)
	}
}

// Observe from many goroutines while the view is read: nothing is lost (run with -race).
func TestLiveConcurrent(t *testing.T) {
	l := NewLive()
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				l.Calls(time.Now())
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				code := codes.OK
				if i%10 == 0 {
					code = codes.Unavailable
				}
				l.Observe(rec([]string{"Search", "Query"}[g%2], "10.0.0.1:19530", time.Now(), time.Millisecond, code))
			}
		})
	}
	wg.Wait()
	close(done)
	if v := l.Calls(time.Now()); v.Total.Calls != goroutines*each || v.Total.Failed != goroutines*each/10 {
		t.Errorf("counted %d calls, %d failed; want %d, %d", v.Total.Calls, v.Total.Failed, goroutines*each, goroutines*each/10)
	}
}

func BenchmarkLiveObserve(b *testing.B) {
	l := NewLive()
	r := rec("Search", "10.0.0.1:19530", time.Now(), 3*time.Millisecond, codes.OK)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		for b.Loop() {
			l.Observe(r)
		}
		b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
	// Every core observing calls of the same method and endpoint, the worst case for
	// sharing: they all add to the same counters.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		b.RunParallel(func(pb *testing.PB) {
			r := *r
			for pb.Next() {
				l.Observe(&r)
			}
		})
		b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	})
}

// The hit ratio of each backend's calls that a reply cache could answer.
func TestLiveCacheHitRatio(t *testing.T) {
	l := NewLive()
	now := time.Now()
	for i, result := range []string{call.CacheHit, call.CacheHit, call.CacheHit, call.CacheMiss, "", ""} {
		r := rec("Search", "10.0.0.1:19530", now, time.Millisecond, codes.OK)
		r.Backend, r.Cache = "ns/milvus:19530", result
		if i == 5 {
			r.Method = "Insert"
		}
		l.Observe(r)
	}
	got := l.Calls(now).Cache["ns/milvus:19530"]
	if got.Calls != 4 || got.Hits != 3 || got.HitRatio != 0.75 {
		t.Fatalf("cache stats %+v, want 3 hits of 4", got)
	}
}
