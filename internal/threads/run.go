package threads

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

// Run chooses the number of threads that run Go code every tick until ctx ends, then
// gives the choice back to the runtime. It returns at once if GOMAXPROCS is set in the
// environment, or where the process's CPU time cannot be read.
func Run(ctx context.Context, logger *slog.Logger) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	r, ok := newReader()
	if !ok {
		return
	}
	c := newController(runtime.GOMAXPROCS(0))
	t := time.NewTicker(tick)
	defer t.Stop()
	// The runtime's own choice follows a container's CPU limit as it changes; setting
	// GOMAXPROCS stops that until SetDefaultGOMAXPROCS.
	defer runtime.SetDefaultGOMAXPROCS()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			before := c.procs
			l := r.read(now)
			n := c.next(now, l)
			if n == before {
				continue
			}
			if n == c.max {
				runtime.SetDefaultGOMAXPROCS()
				c.max = runtime.GOMAXPROCS(0)
				c.procs = c.max
			} else {
				runtime.GOMAXPROCS(n)
			}
			logger.Debug("threads running Go code", "from", before, "to", c.procs,
				"cpu", fmt.Sprintf("%.2f", l.cpu), "waits_p90", l.wait)
		}
	}
}

// reader reads the process's load since its last read.
type reader struct {
	samples []metrics.Sample
	counts  []uint64 // the waits' histogram at the last read
	cpu     time.Duration
	at      time.Time
}

const waitsMetric = "/sched/latencies:seconds"

func newReader() (*reader, bool) {
	cpu, ok := processCPU()
	if !ok {
		return nil, false
	}
	r := &reader{samples: []metrics.Sample{{Name: waitsMetric}}, cpu: cpu, at: time.Now()}
	metrics.Read(r.samples)
	if r.samples[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil, false
	}
	r.counts = append([]uint64(nil), r.samples[0].Value.Float64Histogram().Counts...)
	return r, true
}

func (r *reader) read(now time.Time) load {
	cpu, _ := processCPU()
	metrics.Read(r.samples)
	h := r.samples[0].Value.Float64Histogram()
	l := load{wait: p90(h, r.counts)}
	if span := now.Sub(r.at); span > 0 {
		l.cpu = float64(cpu-r.cpu) / float64(span)
	}
	r.cpu, r.at = cpu, now
	r.counts = append(r.counts[:0], h.Counts...)
	return l
}

// p90 is the 90th percentile of the waits counted in h since the counts were before:
// the upper bound of its bucket, or 0 with fewer than minSamples waits.
func p90(h *metrics.Float64Histogram, before []uint64) time.Duration {
	var n uint64
	for i, c := range h.Counts {
		n += c - before[i]
	}
	if n < minSamples {
		return 0
	}
	var seen uint64
	for i, c := range h.Counts {
		if seen += c - before[i]; seen*10 >= n*9 {
			if up := h.Buckets[i+1]; up < math.MaxInt64/float64(time.Second) {
				return time.Duration(up * float64(time.Second))
			}
			return math.MaxInt64 // the last bucket has no upper bound
		}
	}
	return 0
}
