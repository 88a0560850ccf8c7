package procmem

import (
	"testing"
	"time"
)

// TestBurstLeft: a heap kept well above the collector's target (the pages of a burst of
// connections) is given back; one at about the target (steady state, the scavenger keeps
// about 1.1× it) or only a little above it is not.
func TestBurstLeft(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		kept, goal uint64
		want       bool
	}{
		{150 * mib, 47 * mib, true},   // after 2,000 clients connected at once
		{52 * mib, 47 * mib, false},   // steady many clients
		{80 * mib, 47 * mib, true},    // half given back already
		{12 * mib, 4 * mib, false},    // three times the target, but 8 MiB: not worth a collection
		{300 * mib, 250 * mib, false}, // a busy relay between collections
	} {
		if got := burstLeft(c.kept, c.goal); got != c.want {
			t.Errorf("kept %d MiB, target %d MiB: %v, want %v", c.kept/mib, c.goal/mib, got, c.want)
		}
	}
}

// TestTrimmerQuietAndRateLimited: the trimmer gives back after a burst (the heap kept at
// some tick well above the target now), only while the balancer is quiet, and at most
// once per trimEvery.
func TestTrimmerQuietAndRateLimited(t *testing.T) {
	const mib = 1 << 20
	released, dropped := 0, 0
	tr := newTrimmer()
	tr.releaseHeap = func() { released++ }
	tr.dropPages = func() { dropped++ }
	kept := uint64(150 * mib)
	tr.read = func() (uint64, uint64) { return kept, 47 * mib }
	now := time.Unix(1000, 0)
	tick := func(after time.Duration, quiet bool, want bool) {
		t.Helper()
		if got := tr.tick(now.Add(after), quiet); got != want {
			t.Fatalf("%v after the start, quiet %v: trimmed %v, want %v", after, quiet, got, want)
		}
	}
	tick(0, false, false) // the burst: busy
	kept = 60 * mib       // the scavenger gave some back, not all
	tick(time.Second, true, true)
	if released != 1 {
		t.Fatalf("%d releases, want 1", released)
	}
	kept = 150 * mib                 // another burst
	tick(2*time.Second, true, false) // within trimEvery of the last
	tick(time.Second+trimEvery, true, true)
	kept = 50 * mib // steady: about the target
	tick(time.Second+3*trimEvery, true, false)
	if released != 2 {
		t.Fatalf("%d releases, want 2", released)
	}
	// The executable's pages: at each quiet tick pagesEvery after the last drop.
	if dropped != 3 {
		t.Fatalf("pages dropped %d times, want 3", dropped)
	}
}
