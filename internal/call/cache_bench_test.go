package call

import (
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// BenchmarkCacheHit is the per-call decision's part of a Search answered from the cache:
// the call's start and routing, the request scan, the lookup and the call's end, for a
// Search as pymilvus sends it (one 768-dimension vector, Eventually).
func BenchmarkCacheHit(b *testing.B) {
	p := cachePort(b)
	now := time.Now()
	req := &milvuspb.SearchRequest{CollectionName: "books", DslType: commonpb.DslType_BoolExprV1,
		SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: make([]byte, 768*4+16)},
		Nq:          1, ConsistencyLevel: commonpb.ConsistencyLevel_Eventually,
		SearchParams: []*commonpb.KeyValuePair{{Key: "anns_field", Value: "vector"}, {Key: "topk", Value: "5"},
			{Key: "metric_type", Value: "L2"}, {Key: "params", Value: `{"nprobe":10}`}}}
	msg, reply := frame(b, req), frame(b, okResults)
	path := "/milvus.proto.milvus.MilvusService/Search"
	call := func() bool {
		var c Call
		c.Begin(p, path, true, now)
		if f := routeHeaders(&c, "milvus-demo.milvus.io", "", path); f != nil {
			b.Fatal(f)
		}
		c.Request(msg)
		hit := c.CacheHold() > 0 && c.CacheLookup(msg, now) != nil
		if !hit {
			if _, f := c.Pick(); f != nil {
				b.Fatal(f)
			}
			c.Response(reply)
			c.CacheStore(reply, "0")
		}
		c.Finish(now, "0")
		return hit
	}
	call()
	if !call() {
		b.Fatal("the second call was not a hit")
	}
	b.ReportAllocs()
	for b.Loop() {
		call()
	}
}
