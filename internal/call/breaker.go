package call

import (
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
)

// Circuit breaking: a backend may bound its calls in flight as a whole
// (CircuitBreaker.MaxInflight) and on any one endpoint (MaxInflightPerEndpoint). A call
// over a bound is answered at once with UNAVAILABLE, which both Milvus SDKs retry with
// backoff of their own: pymilvus's retry_on_rpc_failure retries every gRPC code but
// those in IGNORE_RETRY_CODES (RESOURCE_EXHAUSTED is one of them, so it would fail the
// call), and the Go SDK (client/v2) retries UNAVAILABLE and RESOURCE_EXHAUSTED. A Milvus
// RateLimit status in an OK reply would be retried by pymilvus only (the Go SDK's
// rate-limit interceptor is not installed) and needs a reply message of the method's
// type. REST clients get 503.

// admit decides whether ep, the picker's choice (nil when it had none), takes the call,
// within the backend's in-flight limits: when ep is at the per-endpoint limit, the
// least busy endpoint under it takes the call instead. A call that is being retried is
// counted in the backend's retry budget from its second attempt on (settle ends that).
// Pick calls it before counting the call on the endpoint.
func (c *Call) admit(ep *balancer.Endpoint) (*balancer.Endpoint, *Failure) {
	if ep == nil {
		return nil, NoEndpoint(c.Service())
	}
	if lim := c.be.Resilience.Limits; lim.MaxInflight > 0 || lim.MaxInflightPerEndpoint > 0 {
		if lim.MaxInflight > 0 && callsInFlight(c.be.Endpoints) >= int64(lim.MaxInflight) {
			return nil, c.overflow(false, lim.MaxInflight)
		}
		if limit := int64(lim.MaxInflightPerEndpoint); limit > 0 && ep.Inflight() >= limit {
			if ep = leastBusyUnder(c.be.Endpoints, limit); ep == nil {
				return nil, c.overflow(true, lim.MaxInflightPerEndpoint)
			}
		}
	}
	if c.Rec.Attempts == 1 {
		budgetOf(c.be.Key).retrying.Add(1)
	}
	return ep, nil
}

// leastBusyUnder returns the available endpoint with the fewest calls in flight, if it
// has fewer than limit, else nil.
func leastBusyUnder(eps []*balancer.Endpoint, limit int64) *balancer.Endpoint {
	now := time.Now().UnixNano()
	var best *balancer.Endpoint
	for _, ep := range eps {
		if ep.Available(now) && ep.Inflight() < limit && (best == nil || ep.Inflight() < best.Inflight()) {
			best = ep
		}
	}
	return best
}

// overflow is the answer to a call over a limit, counted.
func (c *Call) overflow(perEndpoint bool, limit int) *Failure {
	if e := c.events(); e != nil {
		e.Overflowed(c.be.Key, perEndpoint)
	}
	return Overloaded(c.Service(), perEndpoint, limit)
}

// Overloaded answers a call over a circuit breaker's limit of calls in flight.
func Overloaded(service string, perEndpoint bool, limit int) *Failure {
	scope := " to Service " + service
	if perEndpoint {
		scope = " on every endpoint of Service " + service
	}
	return &Failure{Code: codes.Unavailable, Msg: "too many calls in flight" + scope + " (limit " + strconv.Itoa(limit) + "); retry later"}
}
