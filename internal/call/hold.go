package call

import (
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/ratelimit"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Decision is what the Route step tells the data path.
type Decision struct {
	// Entry is the route that takes the call (the REST handler redirects by it); nil
	// when none does.
	Entry *router.Entry[*gateway.Backend]
	// Wait: the route depends on the first request message. The data path holds the
	// request's bytes (sending nothing upstream) and gives them to Hold as they come,
	// until Hold returns the decision.
	Wait bool
	// Reply, when set, is the balancer's answer: a response message of the method's own
	// type (Milvus's reply over its quota), to be framed as one gRPC message and sent
	// with grpc-status 0.
	Reply []byte
	// Fail, when set, is the balancer's answer as a status: no rule, a fixed response,
	// a gRPC rate limit on a method whose reply has no Status.
	Fail *Failure
}

// Go reports whether the call goes to its backend: Pick next.
func (d Decision) Go() bool { return !d.Wait && d.Reply == nil && d.Fail == nil }

// Route is the Route step: where the call goes, by what its headers say (req: the data
// path fills Authority, SNI, Path, Method, Headers and Source; the user name and the
// Milvus method come from Begin and Metadata), and, when a route or a rate limit depends
// on them, by the names the first request message carries. Then the route's rate limits
// apply. Route keeps what it needs of req.
func (c *Call) Route(req *Request) Decision {
	r := *req // on the stack: kept (dreq) only by a call that waits
	r.User = c.Rec.User
	r.Milvus = c.method
	c.held = 0
	e, need, f := c.decide(&r, nil)
	c.want(need)
	if need != 0 {
		// The data path's header list is gone by the time the message says enough.
		c.need = need
		r.Headers = append([]hpack.HeaderField(nil), req.Headers...)
		c.dreq = new(Request)
		*c.dreq = r
		return Decision{Wait: true}
	}
	return c.decided(e, f, &r, nil)
}

// HoldLimit is the most request bytes (the gRPC prefix included) a decision waits for:
// MaxNameBytes of the first message. It is the HTTP/2 initial window (RFC 9113 §6.9.2),
// so any client can send all of it before it has read a single frame of the balancer's.
const HoldLimit = PrefixLen + MaxNameBytes

// Hold takes the next request bytes p while the decision waits (Route returned Wait);
// last says that no more will come for the decision: the request ended, or the data path
// may hold no more. It returns the decision once it can be made: the names it needs were
// read, the first message ended or cannot be read, HoldLimit bytes were held, or last.
// Names not read by then are unknown: conditions on them do not hold, limits on them do
// not apply. p also goes to the call's record, as Request's bytes do.
func (c *Call) Hold(p []byte, last bool) (d Decision, ready bool) {
	c.held += int64(len(p))
	more := c.Request(p)
	names := c.names()
	if !last && more && names.Known&c.need != c.need && c.held < HoldLimit {
		return Decision{}, false
	}
	c.need = 0
	e, _, f := c.decide(c.dreq, names)
	return c.decided(e, f, c.dreq, names), true
}

// want adds to what the request scanner reads (the observers' fields, Begin) what the
// route uses: the names a condition or a rate limit waits for (need), and the names and
// level the reply cache decides by. Route calls it before any request bytes were read.
func (c *Call) want(need router.NameSet) {
	if c.scan == nil {
		return
	}
	var f milvus.Fields
	for _, k := range nameFields {
		if need&k.n != 0 {
			f |= k.f
		}
	}
	if c.cache.c != nil {
		f |= milvus.FieldNames | milvus.FieldConsistency
	}
	c.scan.req.Widen(f)
}

// nameFields pairs the names routes read with the request fields that carry them.
var nameFields = [...]struct {
	f milvus.Fields
	n router.NameSet
}{{milvus.FieldDB, router.NameDB}, {milvus.FieldCollection, router.NameCollection}, {milvus.FieldConsistency, router.NameConsistency}}

// names are what was read of the first request message so far, as the routes read them.
func (c *Call) names() *router.Names {
	r, known := c.request()
	n := &router.Names{DB: r.DB, Collection: r.Collection, Consistency: r.Consistency, Guarantee: r.Guarantee}
	for _, k := range nameFields {
		if known&k.f != 0 {
			n.Known |= k.n
		}
	}
	if c.scan == nil {
		return n
	}
	if size, ok := c.scan.req.Size(); ok {
		n.Size, n.Known = size, n.Known|router.NameSize
	}
	return n
}

// decided applies the rate limits of the route decide chose for req.
func (c *Call) decided(e *router.Entry[*gateway.Backend], f *Failure, req *Request, names *router.Names) Decision {
	if f != nil {
		return Decision{Entry: e, Fail: f}
	}
	if c.be != nil {
		reply, f := c.limit(e, req, names, ratelimit.Clock)
		if reply != nil || f != nil {
			c.be, c.mirror = nil, nil // answered here: no backend takes the call
			return Decision{Entry: e, Reply: reply, Fail: f}
		}
	}
	return Decision{Entry: e}
}

// Expired is the failure of a call whose grpc-timeout passed: waiting for its backend, or,
// before it was routed, for its request.
func (c *Call) Expired() *Failure {
	if c.be == nil {
		return DeadlineExceeded("the request")
	}
	return DeadlineExceeded(c.Service())
}
