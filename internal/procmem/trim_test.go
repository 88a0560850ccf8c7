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

// TestTrimmerQuietAndRateLimited: the trimmer gives back only while the balancer is quiet,
// and at most once per trimEvery, whatever the heap says.
func TestTrimmerQuietAndRateLimited(t *testing.T) {
	released := 0
	tr := newTrimmer()
	tr.release = func() { released++ }
	burst := true
	tr.left = func() bool { return burst }
	now := time.Unix(1000, 0)
	if tr.tick(now, false) {
		t.Fatal("trimmed while busy")
	}
	if !tr.tick(now, true) || released != 1 {
		t.Fatalf("quiet after a burst: not trimmed (%d releases)", released)
	}
	if tr.tick(now.Add(trimEvery/2), true) || released != 1 {
		t.Fatal("trimmed twice within trimEvery")
	}
	if !tr.tick(now.Add(trimEvery), true) || released != 2 {
		t.Fatal("not trimmed again after trimEvery")
	}
	burst = false
	if tr.tick(now.Add(3*trimEvery), true) || released != 2 {
		t.Fatal("trimmed with nothing left of a burst")
	}
}
