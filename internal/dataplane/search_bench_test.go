package dataplane_test

import (
	"context"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// BenchmarkSearchRelay sends Searches one at a time through the relay (h2c) to a fake
// Milvus, on an Ingress with the reply cache on, as the bench's is (its Searches name no
// level: they bypass the cache, after the lookup of the collection's default level).
// The balancer, the backend and the client share the process: allocs/op and B/op are
// the three's, and the relay's share is read from a memory profile
// (-memprofile, -memprofilerate 1, pprof -focus 'internal/(relay|call)\.'). For the
// balancer's CPU per call, use the bench (docs/benchmarks.md).
func BenchmarkSearchRelay(b *testing.B) {
	backends := lbtest.Backends(b, 1, fakemilvus.Options{})
	l := lbtest.Start(b, lbtest.Options{Annotations: map[string]string{ingress.AnnotationCache: `{"methods":["Search"]}`}}, lbtest.Addrs(backends)...)
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
