package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"google.golang.org/protobuf/proto"
)

func BenchmarkCacheKey(b *testing.B) {
	msg, _ := proto.Marshal(pymilvusSearch(1, 768, commonpb.ConsistencyLevel_Eventually, false))
	dst := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		dst, _, _ = CacheKey(dst[:0], methods["Search"], msg)
	}
}
