package fakemilvus

import (
	"context"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// BenchmarkSearch measures a small Search round trip over loopback, the fake's share of
// a balancer benchmark. Run with -benchmem to see allocations.
func BenchmarkSearch(b *testing.B) {
	s := New(Options{NoRecord: true})
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	c := dial(b, s.Addr())
	req := &milvuspb.SearchRequest{CollectionName: "c1", Nq: 1, SearchParams: []*commonpb.KeyValuePair{{Key: "topk", Value: "10"}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Search(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
