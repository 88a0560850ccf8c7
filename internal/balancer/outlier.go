package balancer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Passive outlier detection lives here and in internal/call: call decides what counts as
// a gateway failure and when a backend's policy ejects (call/outlier.go); this file keeps
// the state that outlives snapshots with the Endpoint (consecutive failures, ejections in
// a row, when the ejection ends) and applies the share cap over a backend's endpoints.
// internal/health brings an ejected endpoint back: a probed endpoint returns at its first
// passing active check after its ejection time (health reports passes with Passed), an
// endpoint without active checks when the time is over.

// passive is an endpoint's health as real calls see it. All fields are safe for
// concurrent use; ejection decisions are serialized by ejectMu.
type passive struct {
	failures atomic.Int32 // consecutive gateway failures since the last success
	until    atomic.Int64 // unix nanos when the current or last ejection ends; 0: never ejected
	probed   atomic.Bool  // an active check probes the endpoint
	lastPass atomic.Int64 // unix nanos of its last passing active check
	// ejections is the ejection time's multiplier: ejections in a row, one fewer for each
	// base ejection time spent in service since the last one (as Envoy's outlier
	// detection decrements it while a host stays healthy). Guarded by ejectMu.
	ejections int
}

// ejectMu serializes ejection decisions, so that two endpoints failing at once cannot
// both pass the cap of their backend. Ejections are rare; the data path only takes it
// when an endpoint reaches its failure threshold.
var ejectMu sync.Mutex

// Succeeded records a call the endpoint answered: its run of failures ends.
func (e *Endpoint) Succeeded() {
	if e.passive.failures.Load() != 0 {
		e.passive.failures.Store(0)
	}
}

// Failed records a gateway failure and returns how many there have been in a row.
func (e *Endpoint) Failed() int { return int(e.passive.failures.Add(1)) }

// Ejected reports whether the endpoint is ejected at now (unix nanos): before its
// ejection time is over or, when it is probed, until a check passes after that.
func (e *Endpoint) Ejected(now int64) bool {
	u := e.passive.until.Load()
	return u != 0 && (now < u || (e.passive.probed.Load() && e.passive.lastPass.Load() < u))
}

// Eject keeps the endpoint from new calls for d, whatever its policy (a refused
// connection, before outlier detection decides).
func (e *Endpoint) Eject(d time.Duration) { e.passive.until.Store(time.Now().Add(d).UnixNano()) }

// SetProbed records whether an active check probes the endpoint (health sets it while a
// probe runs), and so whether an ejection ends with a passing check.
func (e *Endpoint) SetProbed(on bool) { e.passive.probed.Store(on) }

// Probed reports whether an active check probes the endpoint.
func (e *Endpoint) Probed() bool { return e.passive.probed.Load() }

// Passed records a passing active check at now and reports whether it ended an
// ejection: the first pass after the ejection time.
func (e *Endpoint) Passed(now time.Time) (returned bool) {
	n := now.UnixNano()
	prev := e.passive.lastPass.Swap(n)
	u := e.passive.until.Load()
	return u != 0 && prev < u && n >= u
}

// Ejection is how an outlier is ejected: the policy of its backend.
type Ejection struct {
	Base, Max  time.Duration
	MaxPercent int
}

// Eject ejects ep, one of the endpoints of a backend, unless that would leave more than
// p.MaxPercent of them ejected at once. One endpoint of two or more may always be, as in
// Envoy; a lone endpoint never is (calls are better sent to it than to none). The n-th
// ejection in a row lasts n × Base, at most Max. It reports the ejection's length, 0
// when ep was not ejected; ep's failures start again from zero either way.
func Eject(ep *Endpoint, backend []*Endpoint, p Ejection, now time.Time) time.Duration {
	ejectMu.Lock()
	defer ejectMu.Unlock()
	ep.passive.failures.Store(0)
	n := now.UnixNano()
	if ep.Ejected(n) || !ejectable(ep, backend, p.MaxPercent, n) {
		return 0
	}
	s := &ep.passive
	if u := s.until.Load(); u != 0 && n > u && p.Base > 0 {
		s.ejections = max(0, s.ejections-int(time.Duration(n-u)/p.Base))
	}
	// The multiplier stops where the time reaches Max, so that it decays from there.
	capped := max(p.Max, p.Base)
	s.ejections = min(s.ejections+1, int((capped+p.Base-1)/max(p.Base, 1)))
	d := min(time.Duration(s.ejections)*p.Base, capped)
	s.until.Store(n + d.Nanoseconds())
	return d
}

// ejectable reports whether ejecting ep keeps its backend within maxPercent ejected.
func ejectable(ep *Endpoint, backend []*Endpoint, maxPercent int, now int64) bool {
	total, ejected := 0, 0
	member := false
	for _, o := range backend {
		total++
		member = member || o == ep
		if o != ep && o.Ejected(now) {
			ejected++
		}
	}
	if !member || total < 2 {
		return false
	}
	allowed := max(total*maxPercent/100, 1)
	return ejected+1 <= allowed
}

// EjectedUntil returns when the endpoint's ejection time ends, the zero time when it was
// never ejected (for status pages).
func (e *Endpoint) EjectedUntil() time.Time {
	if u := e.passive.until.Load(); u != 0 {
		return time.Unix(0, u)
	}
	return time.Time{}
}
