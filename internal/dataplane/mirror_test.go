package dataplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// mirrorMetric is the value of a mirror metric's series whose labels include want.
func (l *lb) mirrorMetric(name string, want map[string]string) float64 {
	l.t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Plane.Mirror)
	mfs, err := reg.Gather()
	if err != nil {
		l.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// Mirroring reads to green: the client gets blue's replies only, green gets a copy of
// each read and no write; a mirror that is slow, then gone, never fails the client's
// calls, and what it could not take is counted.
func TestMirrorCopiesReads(t *testing.T) {
	l, blue, green := routed(t, nil)
	l.editBackend(blueKey, func(b *config.Backend) {
		b.Mirror = &config.Mirror{Backend: greenKey, Percent: 100, Operations: []string{"read"}}
	})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 60*time.Second)
	var hdr metadata.MD
	if _, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "c1"}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(fakemilvus.BackendHeader); len(got) != 1 || got[0] != blue.Name() {
		t.Errorf("the reply came from %v; want the primary %s only", got, blue.Name())
	}
	if _, err := c.Insert(ctx, &milvuspb.InsertRequest{CollectionName: "c1", NumRows: 1}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, func() bool { return green.Count(searchMethod) == 1 }) {
		t.Fatalf("the mirror got %d Searches; want the copy of 1", green.Count(searchMethod))
	}
	if n := green.Count("/milvus.proto.milvus.MilvusService/Insert"); n != 0 {
		t.Errorf("the mirror got %d Inserts; only reads are mirrored", n)
	}
	ok := map[string]string{"backend": greenKey, "method": "Search", "code": "OK"}
	if !waitFor(ctx, func() bool { return l.mirrorMetric("milvus_lb_mirror_requests_total", ok) == 1 }) {
		t.Errorf("mirror_requests_total{Search, OK} = %v; want 1", l.mirrorMetric("milvus_lb_mirror_requests_total", ok))
	}

	// A mirror slower than anything the clients would wait for: their calls go on, and
	// copies past the mirror's queue are dropped, counted.
	green.SetDelay(time.Hour)
	for range 400 {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Search(callCtx, &milvuspb.SearchRequest{CollectionName: "c1"})
		cancel()
		if err != nil {
			t.Fatalf("with a slow mirror: %v", err)
		}
	}
	if n := l.mirrorMetric("milvus_lb_mirror_dropped_total", map[string]string{"backend": greenKey, "reason": "queue_full"}); n < 400-256-4 {
		t.Errorf("%v copies dropped for a full queue; want at least %d of 400", n, 400-256-4)
	}

	// The mirror goes away: the clients do not notice.
	green.Kill()
	for range 20 {
		if _, err := c.Search(ctx, &milvuspb.SearchRequest{CollectionName: "c1"}); err != nil {
			t.Fatalf("with the mirror down: %v", err)
		}
	}
	if b := blue.Count(searchMethod); b != 421 {
		t.Errorf("the primary got %d Searches; want 421", b)
	}
	// What the mirror could not answer is counted, for the operator to see.
	down := map[string]string{"backend": greenKey, "method": "Search", "code": "transport_error"}
	if !waitFor(ctx, func() bool { return l.mirrorMetric("milvus_lb_mirror_requests_total", down) > 0 }) {
		t.Errorf("no copy to the mirror that went away counted as transport_error")
	}
}

// With milvus-lb.io/cache, a call answered from the cache is not copied to the mirror:
// it never reached the primary, and the mirror is compared with what the primary does.
// The miss that filled the cache is copied.
func TestMirrorSkipsCacheHits(t *testing.T) {
	l, blue, green := routed(t, nil)
	m := *l.model
	m.Caches = map[string]*config.Cache{"milvus/milvus-demo": {Methods: []string{"Search"},
		MaxAge: config.Duration(time.Minute), BoundedStaleness: config.Duration(time.Minute), MaxEntryBytes: 1 << 16, MaxBytes: 1 << 20}}
	l.model = &m
	l.editBackend(blueKey, func(b *config.Backend) {
		b.Mirror = &config.Mirror{Backend: greenKey, Percent: 100, Operations: []string{"read"}}
	})
	c, _ := l.dial()
	ctx := ctxTimeout(t, 60*time.Second)
	req := &milvuspb.SearchRequest{CollectionName: "c1", Dsl: "id > 0", ConsistencyLevel: commonpb.ConsistencyLevel_Eventually}
	for range 5 {
		if _, err := c.Search(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := blue.Count(searchMethod); n != 1 {
		t.Fatalf("the primary got %d Searches; want 1, the other 4 answered from the cache", n)
	}
	// A Strong search is not cached: it reaches both, after the copy of the miss.
	req.ConsistencyLevel = commonpb.ConsistencyLevel_Strong
	if _, err := c.Search(ctx, req); err != nil {
		t.Fatal(err)
	}
	if !waitFor(ctx, func() bool { return green.Count(searchMethod) >= 2 }) {
		t.Fatalf("the mirror got %d Searches; want 2 (the miss and the Strong search)", green.Count(searchMethod))
	}
	time.Sleep(100 * time.Millisecond) // a copy of a hit, if any were sent, would be here by now
	if n := green.Count(searchMethod); n != 2 {
		t.Errorf("the mirror got %d Searches; want 2: the cache's hits were copied", n)
	}
}
