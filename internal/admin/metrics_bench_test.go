package admin

import (
	"testing"

	"google.golang.org/grpc/codes"
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
			for b.Loop() {
				m.Observe(r)
			}
		})
	}
}
