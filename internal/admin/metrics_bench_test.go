package admin

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// BenchmarkMetricsObserve is the data path's cost of the metrics of one call.
func BenchmarkMetricsObserve(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []MetricsOption
	}{{"default", nil}, {"collection-labels", []MetricsOption{WithCollectionLabels(100)}}} {
		b.Run(c.name, func(b *testing.B) {
			m, _ := newTestMetrics(c.opts...)
			r := grpcCall("Search", "10.0.0.1:19530", codes.OK, 0, 0)
			b.ReportAllocs()
			cpu := testenv.CPUTime()
			for b.Loop() {
				m.Observe(r)
			}
			// Less moved by other work on the machine than ns/op.
			b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
