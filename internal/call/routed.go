package call

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// decide is the Route step with everything the headers say (req) and, once read, what the
// first request message says (names; nil at the headers). When the route depends on the
// message, it returns need: Hold reads those names from the first message (at most
// MaxNameBytes of it, while the data path holds it) and calls decide again. Else it
// returns the route (the REST handler redirects by it), or the failure the client is told:
// no rule, or the route's fixed response. Then Backend is the backend the call goes to.
func (c *Call) decide(req *Request, names *router.Names) (e *router.Entry[*gateway.Backend], need router.NameSet, f *Failure) {
	c.Rec.Authority, c.Rec.ServerName = req.Authority, req.SNI
	snap := c.port.Snapshot()
	l := snap.Listeners[c.port.Number]
	if l == nil {
		return nil, 0, ShuttingDown()
	}
	ch := Choose(snap, l, req, names)
	switch {
	case ch.Need != 0:
		return nil, ch.Need, nil
	case ch.Entry == nil:
		return nil, 0, NoRule(router.HostOnly(req.Authority), req.Path)
	case ch.Backend == nil && ch.Entry.Route.SSLRedirect != 0 && !c.Rec.GRPC:
		return ch.Entry, 0, nil // the REST handler redirects, as the ALB does first
	case ch.Entry.Route.Fixed != nil:
		return ch.Entry, 0, Fixed(ch.Entry.Route.Fixed)
	case ch.Backend == nil:
		// A redirect-only route (ssl-redirect) met by a gRPC call: what a gRPC client
		// makes of the ALB's 301.
		return ch.Entry, 0, Fixed(&config.FixedResponse{StatusCode: http.StatusMovedPermanently,
			MessageBody: "redirected to HTTPS port " + strconv.Itoa(ch.Entry.Route.SSLRedirect)})
	}
	c.be = ch.Backend
	c.mirror = mirrorOf(snap, c.be, req)
	c.Rec.Ingress, c.Rec.Backend = ch.Entry.Route.Ingress, c.be.Key
	c.cache.c = snap.Caches[ch.Entry.Route.Ingress]
	return ch.Entry, 0, nil
}

// Fixed is the answer of a route with a fixed response, for a gRPC client: the code gRPC
// gives the HTTP status (grpc/doc/http-grpc-status-mapping.md), which is what a gRPC
// client makes of the ALB's fixed response, and the message body. A REST client should
// get the response as written (config.FixedResponse).
func Fixed(fx *config.FixedResponse) *Failure {
	code := codes.Unknown
	switch fx.StatusCode {
	case http.StatusBadRequest:
		code = codes.Internal
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		code = codes.Unavailable
	}
	msg := fx.MessageBody
	if msg == "" {
		msg = http.StatusText(fx.StatusCode)
	}
	return &Failure{Code: code, Msg: msg}
}

// limit applies the rate limits of the routed call's Ingress (e from decide) at clock()
// (ratelimit.Clock), with what was read of its first message (nil if nothing); the clock
// is read only when the Ingress has limits (a reading costs about 0.1 µs in a VM). It returns
// nothing when the call may go on. Over a limit, it returns the reply Milvus itself sends
// when over its quota: a response message of the method's own type whose Status carries
// the rate-limit code and a reason naming the limit, to be framed as a gRPC message and
// sent with grpc-status 0; or, for a method whose reply has no Status, a Failure. Rate
// limits apply to MilvusService gRPC calls only.
func (c *Call) limit(e *router.Entry[*gateway.Backend], req *Request, names *router.Names, clock func() int64) (reply []byte, f *Failure) {
	if e == nil || !c.Rec.GRPC || !isMilvus(req) {
		return nil, nil
	}
	set := c.port.Snapshot().RateLimits[e.Route.Ingress]
	if set == nil {
		return nil, nil
	}
	r := set.Admit(limitCall(req, names), clock())
	if r == nil {
		return nil, nil
	}
	reason := r.Reason()
	c.Rec.MilvusCode, c.Rec.MilvusErrCode, c.Rec.MilvusReason = milvus.RateLimitCode, int32(commonpb.ErrorCode_RateLimit), reason
	c.Rec.RateLimit = r.Limit
	if reply = milvus.RateLimited(req.Milvus, reason); reply != nil {
		return reply, nil
	}
	return nil, &Failure{Code: codes.ResourceExhausted, Msg: reason}
}

func isMilvus(req *Request) bool {
	return req.Milvus != nil || strings.HasPrefix(req.Path, milvus.ServicePrefix)
}

// limitCall is what the rate limits see of a call: names not read are left empty.
func limitCall(req *Request, names *router.Names) *ratelimit.Call {
	c := &ratelimit.Call{User: req.User, Class: milvus.Admin}
	if req.Milvus != nil {
		c.Class = req.Milvus.Class
	}
	if names == nil {
		return c
	}
	if names.Known&router.NameDB != 0 {
		c.Database = names.Database(req.Headers)
	}
	if names.Known&router.NameCollection != 0 {
		c.Collection = names.Collection
	}
	if names.Known&router.NameSize != 0 {
		c.Bytes = names.Size
	}
	return c
}
