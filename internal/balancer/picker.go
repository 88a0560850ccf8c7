package balancer

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// Picker chooses an endpoint for one request. Pick never blocks; it returns nil when no
// endpoint is available at now (unix nanoseconds: the caller's clock reading, so that a
// call reads the clock once for its start and its pick). Pickers are immutable apart from
// their own counters and may be called concurrently.
type Picker interface {
	Pick(now int64) *Endpoint
}

// NewPicker returns the picker for algo over eps. slowStart, when positive, ramps a newly
// healthy endpoint's share of calls linearly from 0 to full over that time, as the ALB's
// slow_start.duration_seconds does.
func NewPicker(algo config.Algorithm, eps []*Endpoint, slowStart time.Duration) Picker {
	b := base{eps: eps, slowStart: slowStart.Nanoseconds()}
	switch algo {
	case config.LeastOutstandingRequests:
		return &leastOutstanding{base: b}
	case config.WeightedRandom:
		return &weightedRandom{base: b}
	default:
		return &roundRobin{base: b}
	}
}

type base struct {
	eps       []*Endpoint
	slowStart int64
}

// weight is an endpoint's share in [0,1]: 0 when unavailable, ramping during slow start.
func (b *base) weight(ep *Endpoint, now int64) float64 {
	if !ep.Available(now) {
		return 0
	}
	if b.slowStart <= 0 {
		return 1
	}
	age := now - ep.ReadySince()
	if age >= b.slowStart {
		return 1
	}
	// A floor keeps a warming endpoint from being starved entirely when it is the only one.
	return max(float64(age)/float64(b.slowStart), 0.05)
}

// admit decides whether a warming endpoint takes this call.
func (b *base) admit(ep *Endpoint, now int64) bool {
	w := b.weight(ep, now)
	return w >= 1 || (w > 0 && rand.Float64() < w)
}

// fallback returns any available endpoint, ignoring slow start, so that a lone warming
// endpoint still serves.
func (b *base) fallback(now int64, from uint64) *Endpoint {
	n := uint64(len(b.eps))
	for i := range n {
		if ep := b.eps[(from+i)%n]; ep.Available(now) {
			return ep
		}
	}
	return nil
}

type roundRobin struct {
	base
	next atomic.Uint64
}

func (p *roundRobin) Pick(now int64) *Endpoint {
	if len(p.eps) == 0 {
		return nil
	}
	// Rotate over the endpoints available now, not over all of them: skipping the
	// unavailable ones in place would hand their turns to whichever endpoint follows them.
	var buf [64]*Endpoint
	avail := buf[:0]
	for _, ep := range p.eps {
		if ep.Available(now) {
			avail = append(avail, ep)
		}
	}
	m := uint64(len(avail))
	if m == 0 {
		return nil
	}
	start := p.next.Add(1) - 1
	for i := range m {
		if ep := avail[(start+i)%m]; p.admit(ep, now) {
			return ep
		}
	}
	// Only warming endpoints, all declining this call: one still serves it.
	return avail[start%m]
}

// leastOutstanding picks the available endpoint with the fewest calls in flight, starting
// the scan at a rotating offset so ties are spread evenly (the ALB's
// least_outstanding_requests). An endpoint whose reads take outlierFactor times the
// fastest's or more counts its calls that many times over (latency.go).
type leastOutstanding struct {
	base
	next atomic.Uint64
}

// maxStackEndpoints bounds the endpoints whose factors Pick keeps on the stack.
const maxStackEndpoints = 16

func (p *leastOutstanding) Pick(now int64) *Endpoint {
	n := uint64(len(p.eps))
	if n == 0 {
		return nil
	}
	var stack [maxStackEndpoints]float64
	f := stack[:min(n, maxStackEndpoints)]
	if n > maxStackEndpoints {
		f = make([]float64, n)
	}
	outlierWeights(p.eps, now, f)
	start := p.next.Add(1) - 1
	var best *Endpoint
	var bestLoad float64
	for i := range n {
		j := (start + i) % n
		ep := p.eps[j]
		w := p.weight(ep, now)
		if w == 0 {
			continue
		}
		// A warming endpoint looks busier than it is, so it gets fewer calls.
		load := float64(ep.Inflight()+1) * f[j] / w
		if best == nil || load < bestLoad {
			best, bestLoad = ep, load
		}
	}
	return best
}

// weightedRandom picks at random in proportion to weight.
type weightedRandom struct{ base }

func (p *weightedRandom) Pick(now int64) *Endpoint {
	var total float64
	for _, ep := range p.eps {
		total += p.weight(ep, now)
	}
	if total == 0 {
		return nil
	}
	r := rand.Float64() * total
	for _, ep := range p.eps {
		w := p.weight(ep, now)
		if w == 0 {
			continue
		}
		if r < w {
			return ep
		}
		r -= w
	}
	return p.fallback(now, 0)
}
