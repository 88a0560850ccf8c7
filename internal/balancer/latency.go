package balancer

import (
	"math"
	"sync/atomic"
	"time"
)

// Latency outliers. Least outstanding requests alone keeps sending a slow endpoint a share
// of the calls: with few callers every endpoint often has none in flight, and the slow one
// then wins its turn of the tie (a milvus-lite 19× slower than its peers kept 3-8 % of
// pymilvus's calls, enough to make the p99 a slow call: docs/resilience.md). So the
// least_outstanding_requests picker also weighs what the endpoint's recent reads took,
// once that is far above the fastest endpoint's: the latency outlier of issue 12, as
// Finagle's and Linkerd's peak-EWMA balancers weigh latency, but only beyond a factor, so
// that endpoints of about the same speed keep the plain least-outstanding share.

// latencyTau is the time constant of the estimate: a sample weighs 1-exp(-Δt/τ), Δt the
// time since the previous one, so the estimate follows what the last second or so of
// calls took whatever the call rate (Finagle's time-weighted EWMA). An endpoint that gets
// no calls has its estimate decay by the same constant, so a slow endpoint is tried again
// after a few τ and its estimate follows what it answers then: it comes back once it is
// fast again.
const latencyTau = float64(time.Second)

// outlierFactor is how many times the fastest endpoint's estimate an endpoint's must be
// before it counts: below it, endpoints are equals and least outstanding decides alone.
const outlierFactor = 2

// latency is an endpoint's estimate of its reads' duration.
type latency struct {
	ewma atomic.Uint64 // float64 bits, nanoseconds; 0: no sample yet
	at   atomic.Int64  // unix nanoseconds of the last sample
}

// ObserveRead records that a read-only call answered by the endpoint took d, at now (unix
// nanos). Writes are not observed: a 64 MiB Insert takes long because it is large, not
// because its endpoint is slow. Concurrent samples may overwrite one another; the
// estimate is a heuristic and loses nothing that matters.
func (e *Endpoint) ObserveRead(now int64, d time.Duration) {
	l := &e.lat
	old := math.Float64frombits(l.ewma.Load())
	v := float64(d)
	if old > 0 {
		w := math.Exp(-float64(now-l.at.Load()) / latencyTau)
		v = old*w + v*(1-w)
	}
	l.ewma.Store(math.Float64bits(v))
	l.at.Store(now)
}

// ReadLatency returns the endpoint's estimate at now, decayed for the time without a
// sample; 0 when it has none.
func (e *Endpoint) ReadLatency(now int64) time.Duration {
	v := math.Float64frombits(e.lat.ewma.Load())
	if v == 0 {
		return 0
	}
	if idle := now - e.lat.at.Load(); idle > 0 {
		v *= math.Exp(-float64(idle) / latencyTau)
	}
	return time.Duration(v)
}

// outlierWeights fills f[i] with the factor by which eps[i]'s calls in flight count: its
// estimate over the fastest estimate among the available endpoints sampled within the
// last latencyTau, when that is outlierFactor or more, else 1. Only fresh estimates set
// the pace: a slow endpoint left alone decays until it is an equal again and takes a call
// or two, whose samples say whether it is still slow, rather than becoming the fastest
// and drawing every call while its first answer is on its way. With no fresh estimate
// (no reads for a while) every factor is 1.
func outlierWeights(eps []*Endpoint, now int64, f []float64) {
	fastest := math.Inf(1)
	for i, ep := range eps {
		f[i] = float64(ep.ReadLatency(now))
		fresh := now-ep.lat.at.Load() < int64(latencyTau)
		if f[i] > 0 && f[i] < fastest && fresh && ep.Available(now) {
			fastest = f[i]
		}
	}
	for i := range f {
		if r := f[i] / fastest; r >= outlierFactor {
			f[i] = r
		} else {
			f[i] = 1
		}
	}
}
