package router

import (
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

func TestSplit(t *testing.T) {
	fw := []config.WeightedBackend{{Backend: "a", Weight: 60}, {Backend: "b", Weight: 20}, {Backend: "c", Weight: 0}, {Backend: "d", Weight: 20}}
	s := newSplit(fw)
	if len(s.order) != 5 {
		t.Errorf("order of %d for weights 60/20/0/20; want 5 (divided by their gcd)", len(s.order))
	}
	counts := make([]int, len(fw))
	for range 1000 {
		counts[s.Next()]++
	}
	if counts[0] != 600 || counts[1] != 200 || counts[2] != 0 || counts[3] != 200 {
		t.Errorf("1000 calls split %v; want 600/200/0/200", counts)
	}
	// Evenly: a, with 3 of every 5 calls, never gets more than 2 in a row.
	run, longest := 0, 0
	for range 20 {
		if s.Next() == 0 {
			run++
		} else {
			run = 0
		}
		longest = max(longest, run)
	}
	if longest > 2 {
		t.Errorf("a got %d calls in a row; the order is not interleaved", longest)
	}
	if newSplit([]config.WeightedBackend{{Backend: "a"}}) != nil || newSplit(nil) != nil {
		t.Error("a split for no weights")
	}
}
