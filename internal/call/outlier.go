package call

import (
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Passive outlier detection: an endpoint that fails ConsecutiveFailures calls in a row
// with a gateway failure (a Reason: refused connections, resets, refused streams,
// UNAVAILABLE before any reply, a Milvus status saying the proxy is not serving,
// deadlines passed with no reply) is ejected, within its backend's share cap, for a time
// that grows with repeated ejections (balancer.Eject). It comes back through the active
// check: at the first check that passes after the ejection time (internal/health), or,
// when its backend has no active check, when the time is over.

// failed counts a gateway failure of ep, the call's endpoint, and ejects ep when that
// makes ConsecutiveFailures in a row. Failures of calls still in flight to an endpoint
// already ejected tell nothing new and are not counted.
func (c *Call) failed(ep *balancer.Endpoint, r Reason) {
	now := time.Now()
	o := c.policy().Outlier
	if o.Disabled || ep.Ejected(now.UnixNano()) || ep.Failed() < o.ConsecutiveFailures {
		return
	}
	d := balancer.Eject(ep, c.be.Endpoints, balancer.Ejection{
		Base: o.BaseEjectionTime.D(), Max: o.MaxEjectionTime.D(), MaxPercent: o.MaxEjectionPercent,
	}, now)
	if d == 0 {
		c.port.Log.Debug("endpoint not ejected: the backend's share of ejected endpoints is reached",
			"backend", c.be.Key, "endpoint", ep.Addr, "reason", r.String(), "maxEjectionPercent", o.MaxEjectionPercent)
		return
	}
	log := c.port.Log
	log.Warn("endpoint ejected", "backend", c.be.Key, "endpoint", ep.Addr, "reason", r.String(),
		"failures", o.ConsecutiveFailures, "for", d.String())
	if e := c.events(); e != nil {
		e.Ejected(c.be.Key, ep.Addr, r, d)
	}
	if !ep.Probed() {
		// No active check will bring it back and say so: the time alone does.
		backend := c.be.Key
		time.AfterFunc(d, func() {
			log.Info("endpoint returned after ejection", "address", ep.Addr, "backend", backend, "check", "none")
		})
	}
}

// deadlineSlack is how close to a call's deadline a client's cancellation is taken for
// the deadline passing: the client's timer and the balancer's (from grpc-timeout, read
// later) fire at about the same time, and whichever comes first ends the call; on a
// busy machine they can be far apart.
const deadlineSlack = 50 * time.Millisecond

// Cancelled reports that the client cancelled the call at now; replied whether the
// backend's reply had begun. A cancellation with no reply within deadlineSlack or a fifth
// of the timeout of the call's deadline (Timeout) is the endpoint's timeout, and counts
// against it as the balancer's own timer would have; any other cancellation teaches
// nothing.
func (c *Call) Cancelled(now time.Time, replied bool) {
	if c.ep == nil || replied || c.deadline.IsZero() {
		return
	}
	timeout := c.deadline.Sub(c.Rec.Start)
	if c.deadline.Sub(now) > max(deadlineSlack, timeout/5) {
		return
	}
	c.failed(c.ep, Timeout)
}

// settle reports the outcome of the call's last attempt when the backend answered it
// (the balancer did not answer the call itself: the data path reported those failures
// through Failed): a reply whose Milvus status says the proxy is not serving, or a
// DEADLINE_EXCEEDED with no reply message, counts against the endpoint; any other reply
// ends its run of failures, but UNAVAILABLE, which the data path reports through Failed
// before it relays the backend's own answer. It also ends the call's hold on the retry
// budget. Finish calls it before the endpoint's count of the call ends.
func (c *Call) settle(grpcStatus string) {
	if c.Rec.Attempts > 1 && c.be != nil {
		budgetOf(c.be.Key).retrying.Add(-1)
	}
	ep := c.ep
	if ep == nil || c.Rec.Code != codes.OK || c.reported {
		return // answered by the balancer, or counted already (a held reply, ReplyHeld)
	}
	switch {
	case milvus.NotServing(c.Rec.MilvusCode, c.Rec.MilvusErrCode):
		c.failed(ep, NotServing)
	case c.Rec.GRPC && grpcStatus == deadlineStatus && c.Rec.ResponseBytes == 0:
		// The backend's own timer (it was sent the grpc-timeout) fired before the
		// balancer's: the same timeout, whichever ends the call (Envoy counts it as a
		// 504, a gateway failure). As a reply, it would end the endpoint's run of failures.
		c.failed(ep, Timeout)
	case c.Rec.GRPC && grpcStatus == unavailableStatus:
	case c.Rec.GRPC && grpcStatus != "", !c.Rec.GRPC && c.Rec.Status != 0:
		ep.Succeeded()
	}
}

// unavailableStatus and deadlineStatus are grpc-status UNAVAILABLE and DEADLINE_EXCEEDED
// as sent on the wire.
var (
	unavailableStatus = (&Failure{Code: codes.Unavailable}).GRPCStatus()
	deadlineStatus    = (&Failure{Code: codes.DeadlineExceeded}).GRPCStatus()
)
