package dataplane_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/accesslog"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// cacheSearch is the bench Ingress's milvus-lb.io/cache.
const cacheSearch = `{"methods":["Search"]}`

// BenchmarkSearchRelay sends Searches one at a time through the relay (h2c) to a fake
// Milvus, on an Ingress with the reply cache on, as the bench's is (its Searches name no
// level: they bypass the cache, after the lookup of the collection's default level).
// The balancer, the backend and the client share the process: allocs/op and B/op are
// the three's, and the relay's share is read from a memory profile
// (-memprofile, -memprofilerate 1, pprof -focus 'internal/(relay|call)\.'). For the
// balancer's CPU per call, use the bench (docs/benchmarks.md).
func BenchmarkSearchRelay(b *testing.B) {
	searchRelay(b, map[string]string{ingress.AnnotationCache: cacheSearch}, nil)
}

// BenchmarkSearchRelayPlain is BenchmarkSearchRelay on an Ingress with no annotation (the
// bench's -no-cache): nothing holds the request, the call is picked with its headers.
func BenchmarkSearchRelayPlain(b *testing.B) { searchRelay(b, nil, nil) }

// BenchmarkSearchRelayAccessLog is BenchmarkSearchRelay with the access log on, writing
// JSON lines to a file, as milvus-lb does by default (to its standard output). Its
// allocation beyond BenchmarkSearchRelay's, and the share of accesslog in a CPU profile
// (-cpuprofile, pprof -focus accesslog), are what the log costs a call.
func BenchmarkSearchRelayAccessLog(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	l := accesslog.New(f, accesslog.JSON, accesslog.QueueLen)
	searchRelay(b, map[string]string{ingress.AnnotationCache: cacheSearch}, l)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if s := l.Stats(); s.Written+s.Dropped < uint64(b.N) {
		b.Fatalf("log stats %+v after %d calls", s, b.N)
	}
}

// BenchmarkSearchRelayParallel is BenchmarkSearchRelayPlain with 8 Searches at a time on
// the one client connection, as each of the bench's 4 connections carries 8 callers:
// a connection that always has calls in flight uses its finished streams again.
func BenchmarkSearchRelayParallel(b *testing.B) {
	backends := lbtest.Backends(b, 1, fakemilvus.Options{})
	l := lbtest.Start(b, lbtest.Options{}, lbtest.Addrs(backends)...)
	c, _ := l.Dial(b, false)
	req := searchReq(nil)
	if _, err := c.Search(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Search(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func searchRelay(b *testing.B, annotations map[string]string, o call.Observer) {
	backends := lbtest.Backends(b, 1, fakemilvus.Options{})
	opts := lbtest.Options{Annotations: annotations}
	if o != nil {
		opts.Observer = o
	}
	l := lbtest.Start(b, opts, lbtest.Addrs(backends)...)
	c, _ := l.Dial(b, false)
	ctx := context.Background()
	req := searchReq(nil)
	if _, err := c.Search(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Search(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
