package call

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Port is what every call on one listener port shares: where the configuration in force
// is read, what observes finished calls, the limits. Immutable; safe for concurrent use.
type Port struct {
	Number   int
	TLS      bool
	Snapshot func() *gateway.Snapshot
	Observer Observer // may be nil
	Log      *slog.Logger
	Limits   Limits
}

// maxAttempts bounds how many endpoints one call may try.
const maxAttempts = 3

// ejectFor is how long an endpoint that refused a connection gets no new calls.
const ejectFor = 5 * time.Second

// Call is the per-call decision for one call, from its headers to its record. A data path
// keeps one per call and calls, in order: Begin; Route; Pick (again when Failed says to
// retry); Answer when the balancer answers the call itself; Finish once. Not safe for
// concurrent use: the data path's lock for the call guards it.
type Call struct {
	Rec  Record
	port *Port
	be   *gateway.Backend
	ep   *balancer.Endpoint // counts the call among its calls in flight until Done
}

// Begin starts the decision for a call on port p to path, at now.
func (c *Call) Begin(p *Port, path string, grpc bool, now time.Time) {
	c.port = p
	c.Rec = Record{Start: now, Port: p.Number, GRPC: grpc, Method: path}
	if grpc {
		c.Rec.Method = "grpc"
		if m := milvus.Lookup(path); m != nil {
			c.Rec.Method = m.Name
		}
	}
}

// Port is the port the call came on.
func (c *Call) Port() *Port { return c.port }

// Route chooses the rule for the call from the configuration in force, by authority, TLS
// server name (sni) and path only: Decide without headers or names, so routes with
// conditions on them do not take the call. The data path moves to Decide.
func (c *Call) Route(authority, sni, path string) (*router.Entry[*gateway.Backend], *Failure) {
	e, _, f := c.Decide(&Request{Authority: authority, SNI: sni, Request: router.Request{Path: path}}, &router.Names{})
	return e, f
}

// Backend is the routed call's backend.
func (c *Call) Backend() *gateway.Backend { return c.be }

// Service names the backend in messages: service:port.
func (c *Call) Service() string { return c.be.Service + ":" + c.be.Port }

// Pick chooses the endpoint of the next attempt and counts the call among that
// endpoint's calls in flight until Done, Finish or the next Pick.
func (c *Call) Pick() (*balancer.Endpoint, *Failure) {
	c.Done()
	ep := c.be.Picker.Pick()
	if ep == nil {
		return nil, NoEndpoint(c.Service())
	}
	ep.Start()
	c.ep = ep
	c.Rec.Attempts++
	c.Rec.Endpoint = ep.Addr
	return ep, nil
}

// Done ends the endpoint's count of the call; calling it again does nothing.
func (c *Call) Done() {
	if c.ep != nil {
		c.ep.Done()
		c.ep = nil
	}
}

// Failed decides what an error of the current attempt means: the failure the client is
// told, or that the call goes to another endpoint instead (retry). replayable says whether
// the data path can still send the whole call again. An endpoint that refused the
// connection is ejected for a moment (passive outlier detection).
func (c *Call) Failed(ctx context.Context, err error, replayable bool) (retry bool, f *Failure) {
	f = Classify(ctx, err, c.Service())
	if f.Code == codes.Unavailable && NotReceived(err) && c.ep != nil {
		c.ep.Eject(ejectFor)
		c.port.Log.Warn("backend endpoint refused connection; ejected", "backend", c.be.Key, "endpoint", c.ep.Addr, "error", err)
		if replayable && c.Rec.Attempts < maxAttempts && len(c.be.Endpoints) > 1 {
			return true, nil
		}
	}
	return false, f
}

// Answer records that the balancer answers the call with f.
func (c *Call) Answer(f *Failure) {
	c.Rec.Code = f.Code
	if !c.Rec.GRPC {
		c.Rec.Status = f.HTTPStatus()
	}
	if f.Code != codes.Canceled && f.Cause != nil {
		c.port.Log.Debug("call failed", "backend", c.Rec.Backend, "endpoint", c.Rec.Endpoint, "method", c.Rec.Method, "error", f)
	}
}

// Finish ends the call at now: the endpoint's count of it, and its record, which goes to
// the observer. grpcStatus is the grpc-status the backend sent ("" when none); it is the
// call's code unless the balancer answered with its own.
func (c *Call) Finish(now time.Time, grpcStatus string) {
	c.Done()
	if c.Rec.GRPC && c.Rec.Code == codes.OK && grpcStatus != "" {
		if n, err := strconv.Atoi(grpcStatus); err == nil {
			c.Rec.Code = codes.Code(n)
		} else {
			c.Rec.Code = codes.Unknown
		}
	}
	if o := c.port.Observer; o != nil {
		c.Rec.Duration = now.Sub(c.Rec.Start)
		o.Observe(&c.Rec)
	}
}
