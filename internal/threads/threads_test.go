package threads

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// ticks feeds c n ticks of load l from *now on and returns the number after the last.
func ticks(c *controller, now *time.Time, n int, l load) int {
	procs := c.procs
	for range n {
		*now = now.Add(tick)
		procs = c.next(*now, l)
	}
	return procs
}

// onOneThread is a controller on two cores brought down to one by a calm spell.
func onOneThread(t *testing.T, now *time.Time) *controller {
	c := newController(2)
	if got := ticks(c, now, calmTicks, load{cpu: 0.1}); got != 1 {
		t.Fatalf("calm on two threads: %d threads, want 1", got)
	}
	return c
}

// TestFewerThreadsWhileCalm: a process that uses a small share of its threads (Search on
// two shared cores used 0.36-0.44 of a core) comes down to what it needs once it has been
// calm for calmTicks in a row, and not before; one that needs more than half of each
// thread (3 MiB inserts: 0.66-0.76 of a core on two) keeps them.
func TestFewerThreadsWhileCalm(t *testing.T) {
	now := time.Unix(0, 0)
	c := newController(2)
	if got := ticks(c, &now, calmTicks-1, load{cpu: 0.4}); got != 2 {
		t.Fatalf("after %d calm ticks: %d threads, want 2", calmTicks-1, got)
	}
	if got := ticks(c, &now, 1, load{cpu: 0.4}); got != 1 {
		t.Fatalf("after %d calm ticks: %d threads, want 1", calmTicks, got)
	}

	c = newController(2)
	if got := ticks(c, &now, 100, load{cpu: 0.7}); got != 2 {
		t.Errorf("inserts: %d threads, want 2", got)
	}

	// One busy tick among calm ones starts the count again.
	c = newController(2)
	ticks(c, &now, calmTicks-1, load{cpu: 0.3})
	ticks(c, &now, 1, load{cpu: 0.9})
	if got := ticks(c, &now, calmTicks-1, load{cpu: 0.3}); got != 2 {
		t.Errorf("calm count not restarted by a busy tick: %d threads", got)
	}
}

// TestMoreThreadsAtOnce: a process busy on its threads gets twice as many at the next
// tick, up to the cores; many cores come down to what the CPU in use needs.
func TestMoreThreadsAtOnce(t *testing.T) {
	now := time.Unix(0, 0)
	c := newController(8)
	if got := ticks(c, &now, calmTicks, load{cpu: 1.2}); got != 3 {
		t.Fatalf("1.2 cores in use on 8 threads: %d threads, want 3", got)
	}
	if got := ticks(c, &now, 1, load{cpu: 2.0}); got != 6 {
		t.Fatalf("busy on 3: %d threads, want 6", got)
	}
	if got := ticks(c, &now, 1, load{cpu: 4.0}); got != 8 {
		t.Fatalf("busy on 6: %d threads, want 8 (the cores)", got)
	}
	if got := ticks(c, &now, 1, load{cpu: 7.9}); got != 8 {
		t.Fatalf("busy on all: %d threads, want 8", got)
	}
}

// TestSlowWaitsHoldThreads: goroutines that wait to run bring threads back even when the
// CPU says the process needs few; and then the CPU does not decide when fewer are enough
// again: none fewer for holdBase, twice that if it happens again soon, up to holdMax.
func TestSlowWaitsHoldThreads(t *testing.T) {
	now := time.Unix(0, 0)
	c := onOneThread(t, &now)
	if got := ticks(c, &now, 1, load{cpu: 0.3, wait: 3 * time.Millisecond}); got != 2 {
		t.Fatalf("slow waits on 1 thread: %d threads, want 2", got)
	}
	held := int(holdBase / tick)
	if got := ticks(c, &now, held-1, load{cpu: 0.3}); got != 2 {
		t.Fatalf("within the hold: %d threads, want 2", got)
	}
	if got := ticks(c, &now, calmTicks+1, load{cpu: 0.3}); got != 1 {
		t.Fatalf("after the hold and calmTicks: %d threads, want 1", got)
	}

	// Slow again soon after: the hold doubles.
	ticks(c, &now, 1, load{cpu: 0.3, wait: 3 * time.Millisecond})
	if c.hold != 2*holdBase {
		t.Fatalf("hold %v after slow waits again within %v of the last, want %v", c.hold, recurWithin, 2*holdBase)
	}
	for range 10 {
		ticks(c, &now, int(c.hold/tick)+calmTicks+1, load{cpu: 0.3})
		ticks(c, &now, 1, load{cpu: 0.3, wait: 3 * time.Millisecond})
	}
	if c.hold != holdMax {
		t.Errorf("hold %v after many slow spells, want %v", c.hold, holdMax)
	}

	// Long after: back to holdBase.
	ticks(c, &now, int(2*holdMax/tick)+1, load{cpu: 0.3})
	ticks(c, &now, 1, load{cpu: 0.3, wait: 3 * time.Millisecond})
	if c.hold != holdBase {
		t.Errorf("hold %v long after the last slow spell, want %v", c.hold, holdBase)
	}
}

// TestBusyAndSlowHoldsNothing: waits that come with a busy CPU (thousands of clients
// connecting: their handshakes) do not hold threads; the CPU tells when fewer will do.
func TestBusyAndSlowHoldsNothing(t *testing.T) {
	now := time.Unix(0, 0)
	c := onOneThread(t, &now)
	if got := ticks(c, &now, 1, load{cpu: 0.9, wait: 2 * time.Millisecond}); got != 2 {
		t.Fatalf("a burst of handshakes: %d threads, want 2", got)
	}
	if got := ticks(c, &now, calmTicks, load{cpu: 0.2}); got != 1 {
		t.Errorf("calm after the burst: %d threads, want 1", got)
	}
}

// TestP90: the 90th percentile of the waits since the last read, from the runtime's
// histogram; nothing said by too few waits; the unbounded last bucket is as long as can be.
func TestP90(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{0, 1e-6, 1e-3, 1e-2, math.Inf(1)},
		Counts:  []uint64{100, 10, 0, 0},
	}
	before := []uint64{0, 0, 0, 0}
	if got := p90(h, before); got != time.Microsecond {
		t.Errorf("p90 = %v, want 1µs", got)
	}
	h.Counts = []uint64{100, 10, 40, 0}
	if got := p90(h, before); got != 10*time.Millisecond {
		t.Errorf("p90 = %v, want 10ms", got)
	}
	if got := p90(h, []uint64{100, 10, 30, 0}); got != 0 {
		t.Errorf("p90 of %d waits = %v, want 0 (too few)", 10, got)
	}
	h.Counts = []uint64{0, 0, 0, 50}
	if got := p90(h, before); got != math.MaxInt64 {
		t.Errorf("p90 in the last bucket = %v, want the largest Duration", got)
	}
}

// TestRunIdleProcess: an idle process comes down to one thread of Go code, and the
// runtime's own choice is back when Run ends.
func TestRunIdleProcess(t *testing.T) {
	cores := runtime.GOMAXPROCS(0)
	if cores < 2 {
		t.Skip("one core: nothing to choose")
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.GOMAXPROCS(0) != 1 && time.Now().Before(deadline) {
		time.Sleep(tick)
	}
	got := runtime.GOMAXPROCS(0)
	cancel()
	<-done
	if got != 1 {
		t.Errorf("an idle process kept %d threads of Go code, want 1", got)
	}
	if after := runtime.GOMAXPROCS(0); after != cores {
		t.Errorf("after Run: %d threads, want the runtime's %d", after, cores)
	}
}

// TestRunLeavesTheOperatorsChoice: with GOMAXPROCS set, Run returns at once.
func TestRunLeavesTheOperatorsChoice(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	done := make(chan struct{})
	go func() { defer close(done); Run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with GOMAXPROCS set")
	}
}

// TestReaderCountsCPU: the process's CPU over a tick counts the work done in it.
func TestReaderCountsCPU(t *testing.T) {
	r, ok := newReader()
	if !ok {
		t.Skip("no CPU time here")
	}
	start := time.Now()
	for x := 0; time.Since(start) < 50*time.Millisecond; x++ {
		_ = x * x
	}
	if l := r.read(time.Now()); l.cpu <= 0 {
		t.Errorf("50 ms of work counted as %.3f cores", l.cpu)
	}
}
