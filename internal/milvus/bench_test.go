package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

// benchStream feeds a framed message to write in 16 KiB DATA frames, as the relay would.
func benchStream(b *testing.B, msg []byte, write func([]byte) bool) {
	stream := append(frameOf(msg), msg...)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for p := stream; len(p) > 0; {
			k := min(16384, len(p))
			if write(p[:k]) {
				break
			}
			p = p[k:]
		}
	}
}

// BenchmarkRequestScanner is the data path's cost per call for every field of the record.
func BenchmarkRequestScanner(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
		m    string
	}{
		{"search-nq1-dim768-pymilvus", numberOrder(must(proto.Marshal(pymilvusSearch(1, 768, commonpb.ConsistencyLevel_Bounded, false)))), "Search"},
		{"search-nq10-dim768-gosdk", must(proto.Marshal(pymilvusSearch(10, 768, commonpb.ConsistencyLevel_Bounded, false))), "Search"},
		{"insert-1000x768", numberOrder(must(proto.Marshal(insert(1000, 768)))), "Insert"},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := Lookup(ServicePrefix + c.m)
			var s RequestScanner
			benchStream(b, c.msg, func(p []byte) bool {
				if s.lay == nil || s.done {
					s.Reset(m, AllFields)
				}
				return s.Write(p)
			})
		})
	}
}

func BenchmarkStatusScanner(b *testing.B) {
	res := &milvuspb.SearchResults{Status: &commonpb.Status{}, Results: &schemapb.SearchResultData{NumQueries: 1, TopK: 10, Scores: make([]float32, 10)}}
	m := Lookup(ServicePrefix + "Search")
	var s StatusScanner
	benchStream(b, must(proto.Marshal(res)), func(p []byte) bool {
		s.Reset(m)
		return s.Write(p)
	})
}

func BenchmarkUserName(b *testing.B) {
	v := b64("root:Milvus")
	b.ReportAllocs()
	for b.Loop() {
		UserName(v)
	}
}
