package ratelimit

import "github.com/milvus-lb/milvus-lb/internal/milvus"

// Admit takes c from every limit of the set that applies to it, at now (Clock), and
// returns nil, or the first limit that refused it; then nothing is taken from any (tokens
// taken from the limits before it are given back). A nil Set admits everything.
func (s *Set) Admit(c *Call, now int64) *Refusal {
	if s == nil {
		return nil
	}
	type taken struct {
		b    *bucket
		bs   *buckets
		cost float64
	}
	var buf [8]taken
	got := buf[:0]
	for _, l := range s.limits {
		if !l.applies(c) {
			continue
		}
		k := l.key(c)
		for _, r := range [2]struct {
			bs    *buckets
			cost  float64
			bytes bool
		}{{l.calls, 1, false}, {l.bytes, float64(c.Bytes), true}} {
			if r.bs == nil || r.bytes && (c.Class != milvus.Write || r.cost <= 0) {
				continue
			}
			b := r.bs.get(k, now)
			if !b.take(now, r.bs.rate, r.bs.capacity, r.cost) {
				for _, t := range got {
					t.b.give(t.cost, t.bs.capacity)
				}
				return l.refusal(c, r.bytes)
			}
			got = append(got, taken{b, r.bs, r.cost})
		}
	}
	return nil
}
