package router

import (
	"sync/atomic"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Split spreads a route's calls over its weighted targets (Route.Forward) in a fixed,
// evenly interleaved order: the smooth weighted round robin nginx uses, so any run of
// calls as long as the weights' sum is split exactly by weight (90/10 sends the 10th,
// 20th, ... call to the second target), where a random choice is only right on average.
// Safe for concurrent use: each call takes the next place in the order.
type Split struct {
	order []uint8 // indexes into Route.Forward
	next  atomic.Uint64
}

// newSplit returns nil for a route without weighted targets, or whose weights are all 0.
func newSplit(fw []config.WeightedBackend) *Split {
	g := 0
	for _, t := range fw {
		g = gcd(g, t.Weight)
	}
	if len(fw) == 0 || g == 0 || len(fw) > 255 {
		return nil
	}
	total := 0
	for _, t := range fw {
		total += t.Weight / g
	}
	s := &Split{order: make([]uint8, 0, total)}
	current := make([]int, len(fw))
	for range total {
		best := 0
		for i, t := range fw {
			current[i] += t.Weight / g
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		s.order = append(s.order, uint8(best))
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Next is the index in Route.Forward of the target the next call goes to.
func (s *Split) Next() int {
	n := s.next.Add(1) - 1
	return int(s.order[n%uint64(len(s.order))])
}
