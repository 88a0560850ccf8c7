package accesslog

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// BenchmarkObserve is what a call pays for its line: encoding it and appending it to the
// queue ("serial", "parallel": callers on every core; "file": serial, the writer's system
// calls to a file included), the writer's work included in cpu-ns/op (the process's CPU
// time, the garbage collector's too); or a count when the queue is full ("full").
func BenchmarkObserve(b *testing.B) {
	r := search()
	run := func(b *testing.B, w io.Writer, parallel bool) {
		l := New(w, JSON, 1<<20) // no drops: the writer shares the cores
		b.ReportAllocs()
		cpu := testenv.CPUTime()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Observe(r)
				}
			})
		} else {
			for b.Loop() {
				l.Observe(r)
			}
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(testenv.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(l.Stats().Dropped)/float64(b.N), "dropped/op")
	}
	b.Run("serial", func(b *testing.B) { run(b, io.Discard, false) })
	b.Run("file", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, f, false)
	})
	b.Run("parallel", func(b *testing.B) { run(b, io.Discard, true) })
	b.Run("full", func(b *testing.B) {
		l := New(io.Discard, JSON, 0)
		defer l.Close()
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

// BenchmarkObservePaced is a call's whole cost of its line at a balancer's pace (a call
// every 20 µs of other work on one core, the other core idle): the process's CPU time per
// line beyond that of the same loop without the log, the writer's wake-ups included.
func BenchmarkObservePaced(b *testing.B) {
	const gap = 20 * time.Microsecond
	work := func() {
		for t := time.Now(); time.Since(t) < gap; {
		}
	}
	measure := func(b *testing.B, observe func()) float64 {
		cpu := testenv.CPUTime()
		for b.Loop() {
			work()
			observe()
		}
		return float64(testenv.CPUTime()-cpu) / float64(b.N)
	}
	var bare float64
	b.Run("bare", func(b *testing.B) { bare = measure(b, func() {}) })
	b.Run("log", func(b *testing.B) {
		l := New(io.Discard, JSON, QueueLen)
		r := search()
		b.ReportAllocs()
		b.ReportMetric(measure(b, func() { l.Observe(r) })-bare, "cpu-ns/line")
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	})
}
