package dataplane_test

import (
	"context"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
	"github.com/milvus-lb/milvus-lb/internal/testkit/lbtest"
)

// BenchmarkSearch is one Search at a time through the relay (h2c) to one fake backend
// that answers at once: with -benchmem, the allocations per call of the whole path. The
// client's and the backend's are counted too (one process), and stay the same when only
// the balancer changes, so a difference between two commits is the balancer's.
func BenchmarkSearch(b *testing.B) {
	bs := lbtest.Backends(b, 1, fakemilvus.Options{})
	l := lbtest.Start(b, lbtest.Options{}, lbtest.Addrs(bs)...)
	c, _ := l.Dial(b, false)
	ctx := context.Background()
	req := searchReq(nil)
	if _, err := c.Search(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Search(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
