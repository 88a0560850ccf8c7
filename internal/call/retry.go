package call

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
)

// A call goes to another endpoint only when that is safe by construction:
//   - any call, writes and DDL included, when the backend provably did not receive it
//     (NotSent);
//   - a read-only method (milvus.Method.ReadOnly, classified from milvus-proto) when
//     nothing of the reply reached the client (BeforeReply);
//
// and only while the data path still has the whole request (Attempt.Kept), attempts are
// left (RetryPolicy.MaxAttempts), the call's deadline has not passed, another endpoint
// can take it, and, for a call the backend may have received, the backend's retry budget
// allows.

// retryCase is what the retry decision depends on, besides the budget.
type retryCase struct {
	Stage       Stage
	ReadOnly    bool
	Kept        bool
	Attempts    int // endpoints tried so far
	MaxAttempts int
	Deadline    time.Time // zero: none
	Now         time.Time
	Elsewhere   bool // another endpoint is available
}

// refusal says why the call may not go to another endpoint, "" when it may.
func (r retryCase) refusal() string {
	switch {
	case r.Stage == AfterReply:
		return "the reply had begun"
	case r.Stage == BeforeReply && !r.ReadOnly:
		return "the method is not read-only and the backend may have received it"
	case !r.Kept:
		return "the request was not kept whole"
	case r.Attempts >= r.MaxAttempts:
		return "no attempts left"
	case !r.Deadline.IsZero() && !r.Now.Before(r.Deadline):
		return "the deadline passed"
	case !r.Elsewhere:
		return "no other endpoint"
	}
	return ""
}

// budget bounds one backend's retries, as Envoy's retry budget and gRPC's retry
// throttling do: calls being retried at most Percent of the calls in flight, or beyond
// that a token bucket of PerSecond retries a second, so that a backend with few calls in
// flight can still retry. Safe for concurrent use.
type budget struct {
	retrying atomic.Int64 // calls in flight on their second attempt or later

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// budgets are the retry budgets by backend key. They outlive snapshots, as endpoint
// state does: a reload must not hand out a fresh budget. Bounded by the backends ever
// configured; the data path only reads it when a call fails or is retried.
var budgets sync.Map // string → *budget

func budgetOf(backend string) *budget {
	if b, ok := budgets.Load(backend); ok {
		return b.(*budget)
	}
	b, _ := budgets.LoadOrStore(backend, &budget{})
	return b.(*budget)
}

// allows reports whether one more call may be retried, inflight being the backend's
// calls in flight now; a retry allowed by the bucket spends a token.
func (b *budget) allows(now time.Time, inflight int64, percent, perSecond int) bool {
	if (b.retrying.Load()+1)*100 <= inflight*int64(percent) {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = float64(perSecond)
	} else {
		b.tokens = min(float64(perSecond), b.tokens+now.Sub(b.last).Seconds()*float64(perSecond))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Retry reports the failed attempt a of the call to outlier detection and decides: retry
// (Pick again and send the call there) or the failure the client is told. ctx is the
// call's (the client's cancellation, a deadline of the data path's); the call's own
// deadline (Timeout) bounds it too.
func (c *Call) Retry(ctx context.Context, a Attempt) (retry bool, f *Failure) {
	err := a.Err
	if err == nil {
		err = errors.New(a.Reason.String())
	}
	f = Classify(ctx, err, c.Service())
	if errors.Is(ctx.Err(), context.Canceled) {
		return false, f // the client left: nothing learnt about the endpoint
	}
	if c.ep != nil && a.gatewayFailure() {
		c.failed(c.ep, a.Reason)
		c.reported = true // settle must not count the attempt again
	}
	if a.Reason == Timeout {
		return false, DeadlineExceeded(c.Service()) // the call's own deadline passed
	}
	p := c.policy().Retry
	now := time.Now()
	deadline, _ := ctx.Deadline()
	if !c.deadline.IsZero() && (deadline.IsZero() || c.deadline.Before(deadline)) {
		deadline = c.deadline
	}
	if !deadline.IsZero() && !now.Before(deadline) {
		// The deadline passed first: what the backend did then (a reset once the
		// grpc-timeout forwarded to it ran out) follows from it, and the client is told
		// so, whichever of the timers and the backend's reset came first.
		f = DeadlineExceeded(c.Service())
	}
	rc := retryCase{Stage: a.Stage, ReadOnly: c.Replayable(), Kept: a.Kept,
		Attempts: c.Rec.Attempts, MaxAttempts: p.MaxAttempts, Deadline: deadline, Now: now,
		Elsewhere: c.elsewhere(now.UnixNano())}
	if why := rc.refusal(); why != "" {
		c.port.Log.Debug("not retried", "backend", c.be.Key, "endpoint", c.Rec.Endpoint, "method", c.Rec.Method, "stage", a.Stage.String(), "reason", a.Reason.String(), "why", why)
		return false, f
	}
	// The budget bounds the work retries add to the backends: a call no backend received
	// (NotSent) adds none, and goes elsewhere within its attempts alone. Else, with one
	// endpoint refusing connections and the share of ejections reached, the calls it
	// refuses would fail once the budget was spent.
	if a.Stage != NotSent && !budgetOf(c.be.Key).allows(now, callsInFlight(c.be.Endpoints), p.BudgetPercent, p.MinRetriesPerSecond) {
		if e := c.events(); e != nil {
			e.RetryDenied(c.be.Key)
		}
		return false, f
	}
	return true, nil
}

// elsewhere reports whether an endpoint other than the current one may take a call.
func (c *Call) elsewhere(now int64) bool {
	for _, ep := range c.be.Endpoints {
		if ep != c.ep && ep.Available(now) {
			return true
		}
	}
	return false
}

// untried returns ep, the picker's choice, unless a failed attempt of the call was on it:
// then the least busy available endpoint the call has not tried, as Envoy's
// previous_hosts retry predicate does (with other calls moving the round robin on, a
// retry could otherwise land on the endpoint that just failed, again and again). When
// every available endpoint was tried, ep.
func (c *Call) untried(ep *balancer.Endpoint) *balancer.Endpoint {
	if len(c.tried) == 0 || ep == nil || !slices.Contains(c.tried, ep) {
		return ep
	}
	now := time.Now().UnixNano()
	var best *balancer.Endpoint
	for _, e := range c.be.Endpoints {
		if e.Available(now) && !slices.Contains(c.tried, e) && (best == nil || e.Inflight() < best.Inflight()) {
			best = e
		}
	}
	if best == nil {
		return ep
	}
	return best
}

// ReplayLimit is how many bytes of the call's request the data path keeps so that it
// can send the request again on another endpoint (Attempt.Kept): the backend's
// RetryPolicy.MaxReplayBytes (milvus-lb.io/retry-buffer-size) for a Replayable call,
// WriteReplayBytes for another, 0 when retries are off.
// A mirrored call keeps up to MirrorLimit for its copy, a call the reply cache may answer
// its hold (CacheHold).
func (c *Call) ReplayLimit() int64 {
	p := c.policy().Retry
	n := int64(0)
	switch {
	case p.MaxAttempts <= 1:
	case c.Replayable():
		n = p.MaxReplayBytes
	default:
		n = WriteReplayBytes
	}
	if c.mirror != nil {
		n = max(n, MirrorLimit)
	}
	// The reply cache looks a call up by its whole request: kept as for a replay.
	return max(n, int64(c.CacheHold()))
}

// WriteReplayBytes is how much of a call that is not read-only (a write, DDL) the data
// path keeps. Such a call goes to another endpoint only when the backend provably did
// not receive it, and that can be learnt after its bytes went out: the backend's GOAWAY
// did not cover its stream, or the connection ended before the backend's first frame (a
// stopping server resetting its accept queue). So a small one is kept until its reply
// begins, as grpc-go keeps every call for its transparent retry; 16 KiB, less the
// length prefix, fits one of the relay's pooled buffers (no allocation). A larger one,
// such as an Insert of many rows, is not copied at all (its size is known from its
// length prefix) and fails if the backend goes away under it.
const WriteReplayBytes = 16<<10 - PrefixLen

// callsInFlight is the number of calls in flight to eps.
func callsInFlight(eps []*balancer.Endpoint) (n int64) {
	for _, ep := range eps {
		n += ep.Inflight()
	}
	return n
}
