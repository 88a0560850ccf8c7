package accesslog

import (
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// BenchmarkObserve is the caller's cost of one line: a copy of the record into the queue
// ("queued": the queue is emptied, off the clock, whenever it fills) or a count when it is
// full ("full": callers on every core). The writer's cost is BenchmarkEncode.
func BenchmarkObserve(b *testing.B) {
	r := search()
	b.Run("queued", func(b *testing.B) {
		l := &Logger{q: make(chan call.Record, QueueLen)}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%QueueLen == 0 {
				b.StopTimer()
				for len(l.q) > 0 {
					<-l.q
				}
				b.StartTimer()
			}
			l.Observe(r)
		}
		if d := l.Stats().Dropped; d != 0 {
			b.Fatalf("%d dropped", d)
		}
	})
	b.Run("full", func(b *testing.B) {
		l := &Logger{q: make(chan call.Record, 1)}
		l.Observe(r)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Observe(r)
			}
		})
	})
}

func BenchmarkEncode(b *testing.B) {
	for _, f := range []Format{JSON, Text} {
		b.Run(f.String(), func(b *testing.B) {
			var e encoder
			var line []byte
			r := search()
			b.ReportAllocs()
			for b.Loop() {
				line = e.record(line[:0], r, f)
			}
			b.SetBytes(int64(len(line)))
		})
	}
}
