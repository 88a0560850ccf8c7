package call

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Port is what every call on one listener port shares: where the configuration in force
// is read, what observes finished calls, the limits. Immutable once in use (its one
// cache aside); safe for concurrent use.
type Port struct {
	Number   int
	TLS      bool
	Snapshot func() *gateway.Snapshot
	Observer Observer // may be nil
	Log      *slog.Logger
	Limits   Limits
	Trace    StartTrace // nil: trace contexts pass as they came

	// fields caches RecordFields(Observer) + 1 (0: not yet known): every call's scanner
	// asks, and walking the observers cost about 0.2 µs a Search call (a CPU profile of
	// the whole process, docs/benchmarks.md).
	fields atomic.Uint32
}

// recordFields is what the port's observers read of a request message.
func (p *Port) recordFields() milvus.Fields {
	if v := p.fields.Load(); v != 0 {
		return milvus.Fields(v - 1)
	}
	f := RecordFields(p.Observer)
	p.fields.Store(uint32(f) + 1)
	return f
}

// Call is the per-call decision for one call, from its headers to its record. A data path
// keeps one per call and calls, in order: Begin; Metadata; Route (and Hold while it
// waits); Pick (again when Failed says to retry); HoldReply and ReplyHeld while a held
// reply's Status is read; Answer when the balancer answers the call itself; Finish once. Not safe for concurrent use: the data path's lock for the
// call guards it.
type Call struct {
	Rec    Record
	port   *Port
	method *milvus.Method // nil when the call is not a MilvusService method
	be     *gateway.Backend
	mirror *gateway.Backend     // a copy goes there (Mirror)
	ep     *balancer.Endpoint   // counts the call among its calls in flight until Done
	picked int64                // when ep was picked (unix nanos): what the attempt took
	tried  []*balancer.Endpoint // the endpoints of the failed attempts (retry.go)
	dbMeta string               // the dbname metadata
	trace  TraceContext         // sent upstream in place of the client's
	scan   *scanners            // nil when the call is not a MilvusService method, and after Finish
	spare  *scanners            // kept from one call to the next (Begin), until Release
	// While the decision waits for the first request message (Route, Hold): what the
	// headers said (nil when it did not wait), the names it waits for, the request bytes
	// held so far.
	dreq  *Request
	need  router.NameSet
	held  int64
	cache cacheCall         // the reply cache (cache.go)
	rest  *milvus.RESTNames // a REST call's names; nil for gRPC
	// reported: the current attempt's failure was counted against its endpoint (Retry),
	// so settle leaves it alone.
	reported bool
	// deadline is the call's start plus its grpc-timeout (Timeout); zero when none.
	deadline time.Time
}

// scanners read a Milvus call's messages as they pass. They are pooled (1 KiB, mostly the
// buffers for a name): kept in every call, they made each call's allocation four times as
// large, and the garbage collector ran four times as often. A data path that uses its
// Call again (the relay's streams) keeps them from one call to the next (Begin): a pool's
// Get and Put were about 170 instructions a call (docs/benchmarks.md).
type scanners struct {
	req   milvus.RequestScanner
	reply milvus.StatusScanner
}

var scannerPool = sync.Pool{New: func() any { return new(scanners) }}

// Begin starts the decision for a call on port p to path, at now. c starts as a new
// Call, but for the scanners it keeps from its last call.
func (c *Call) Begin(p *Port, path string, grpc bool, now time.Time) {
	c.reset()
	c.port = p
	c.Rec.Start, c.Rec.Port, c.Rec.GRPC, c.Rec.Method = now, p.Number, grpc, path
	if !grpc {
		c.rest = new(milvus.RESTNames)
		return
	}
	c.Rec.Method = "grpc"
	if c.method = milvus.Lookup(path); c.method != nil {
		c.Rec.Method = c.method.Name
		if c.spare == nil {
			c.spare = scannerPool.Get().(*scanners)
		}
		c.scan = c.spare
		c.scan.req.Reset(c.method, p.recordFields())
		c.scan.reply.Reset(c.method)
	}
}

// Metadata takes what the record keeps of the request's header fields (lower-case
// names): the user name (never the password), the database the dbname metadata selects,
// the client's request id.
func (c *Call) Metadata(fields []hpack.HeaderField) {
	var client TraceContext
	for _, f := range fields {
		switch f.Name {
		case "traceparent":
			client.Traceparent = f.Value
		case "tracestate":
			if client.Tracestate != "" {
				client.Tracestate += ","
			}
			client.Tracestate += f.Value
		case milvus.AuthorizationKey:
			c.Rec.User = milvus.UserName(f.Value)
		case milvus.DBNameKey:
			c.dbMeta = f.Value
		case milvus.RequestIDKey, milvus.RequestIDKeyAlt:
			c.Rec.RequestID = f.Value
		}
	}
	c.trace = client
	if c.port.Trace != nil {
		var ids TraceIDs
		ids, c.trace = c.port.Trace(client)
		c.Rec.TraceID, c.Rec.SpanID, c.Rec.ParentSpanID = ids.TraceID, ids.SpanID, ids.ParentSpanID
	}
}

// Trace is the trace context the call sends upstream (Conn.Upstream).
func (c *Call) Trace() TraceContext { return c.trace }

// Request takes the request's bytes as they pass, and reports whether it wants more: the
// names and counts the first message carries (read as they pass, never held), for the
// record; of a REST call, the names at the start of its JSON body (milvus.RESTNames: may
// be called from the goroutine that sends the body).
func (c *Call) Request(p []byte) (more bool) {
	if c.rest != nil {
		return c.rest.Write(p)
	}
	return c.scan != nil && !c.scan.req.Write(p)
}

// Response takes the reply's bytes as they pass, and reports whether it wants more: the
// Milvus Status inside the reply, which says what gRPC's OK does not.
func (c *Call) Response(p []byte) (more bool) {
	if c.scan == nil {
		return false
	}
	if !c.cache.invalid {
		// A write's reply begins: what it changed is made stale before the client
		// learns that it is done.
		c.cache.invalid = true
		c.invalidate()
	}
	return !c.scan.reply.Write(p)
}

// Moved adds message bytes passed each way to the record (request_bytes and
// response_bytes): gRPC, the DATA of the request and reply streams (length prefixes
// included); REST, the bodies. The relay and REST count them as they move them.
func (c *Call) Moved(request, response int64) {
	c.Rec.RequestBytes += request
	c.Rec.ResponseBytes += response
}

// fillRecord puts what the messages said into the record, and gives the scanners back:
// nothing is read after Finish.
func (c *Call) fillRecord() {
	if c.rest != nil {
		db, coll := c.rest.Result()
		c.Rec.DB, c.Rec.Collection = milvus.ResolveDB(db, c.dbMeta), coll
		return
	}
	if c.scan == nil {
		return
	}
	r, _ := c.scan.req.Result()
	c.Rec.DB = milvus.ResolveDB(r.DB, c.dbMeta)
	c.Rec.Collection, c.Rec.Consistency = r.Collection, r.Consistency
	c.Rec.Rows, c.Rec.NQ, c.Rec.TopK = r.Rows, r.NQ, r.TopK
	if st, ok := c.scan.reply.Result(); ok {
		c.Rec.MilvusCode, c.Rec.MilvusErrCode, c.Rec.MilvusReason = st.Code, st.ErrorCode, st.Reason
	}
}

// request is what the request scanner read so far: nothing for a call that is not a
// MilvusService method, or after Finish.
func (c *Call) request() (milvus.Request, milvus.Fields) {
	if c.scan == nil {
		return milvus.Request{}, 0
	}
	return c.scan.req.Result()
}

// reset makes c a new Call but for its scanners, kept for its next call.
func (c *Call) reset() { *c = Call{spare: c.spare} }

// Release gives back what Begin keeps for the next call, when c will have none; a Call
// dropped without it leaves its scanners to the collector.
func (c *Call) Release() {
	c.scan = nil
	if c.spare != nil {
		scannerPool.Put(c.spare)
		c.spare = nil
	}
}

// Port is the port the call came on.
func (c *Call) Port() *Port { return c.port }

// Backend is the routed call's backend.
func (c *Call) Backend() *gateway.Backend { return c.be }

// Service names the backend in messages: service:port.
func (c *Call) Service() string { return c.be.Service + ":" + c.be.Port }

// Pick chooses the endpoint of the next attempt and counts the call among that
// endpoint's calls in flight until Done, Finish or the next Pick.
func (c *Call) Pick() (*balancer.Endpoint, *Failure) {
	if c.ep != nil {
		c.tried = append(c.tried, c.ep)
	}
	if c.Rec.Attempts > 0 && c.scan != nil {
		c.scan.reply.Reset(c.method) // the next attempt's reply is read anew (ReplyHeld)
	}
	c.reported = false
	c.Done()
	now := c.pickTime()
	ep, f := c.admit(c.untried(c.be.Picker.Pick(now)))
	if f != nil {
		return nil, f
	}
	ep.Start()
	c.ep, c.picked = ep, now
	c.Rec.Attempts++
	c.Rec.Endpoint = ep.Addr
	return ep, nil
}

// pickTime is the time Pick judges the endpoints at. A gRPC call's first attempt that
// waited for nothing (no route reading the first message, no reply cache holding it) is
// picked while its headers are handled, microseconds after Begin: its start serves, and
// saves a clock reading per call (about 0.2 µs in a VM, docs/benchmarks.md). Any other
// pick reads the clock.
func (c *Call) pickTime() int64 {
	if c.Rec.GRPC && c.Rec.Attempts == 0 && c.dreq == nil && c.cache.c == nil && !c.Rec.Start.IsZero() {
		return c.Rec.Start.UnixNano()
	}
	return time.Now().UnixNano()
}

// observeLatency tells the endpoint what a read it answered took, from its pick to now
// (the least-outstanding picker's latency outliers, balancer/latency.go). Only a gRPC read
// the backend answered with status 0 counts: a failure says nothing of its speed, and a
// write's time is its size's. Only a backend balanced by least outstanding requests keeps
// the estimate, the one picker that reads it (about 140 instructions a call saved for the
// others, docs/benchmarks.md); one switched to it starts with none, as a new endpoint does.
func (c *Call) observeLatency(now time.Time, grpcStatus string) {
	if c.ep == nil || c.be.Algorithm != config.LeastOutstandingRequests || c.method == nil || !c.method.ReadOnly ||
		grpcStatus != "0" || c.Rec.Code != codes.OK {
		return
	}
	t := now.UnixNano()
	c.ep.ObserveRead(t, time.Duration(t-c.picked))
}

// Done ends the endpoint's count of the call; calling it again does nothing.
func (c *Call) Done() {
	if c.ep != nil {
		c.ep.Done()
		c.ep = nil
	}
}

// Stage says how far a failed attempt got, which decides whether the call may be sent
// to another endpoint.
type Stage uint8

const (
	// NotSent: the backend provably did not receive the call (the connection was refused,
	// the stream was refused, or it was above a GOAWAY's last stream id). Any call may go
	// elsewhere, writes and DDL included.
	NotSent Stage = iota
	// BeforeReply: the backend may have received the call but sent no reply header. Only
	// a call that changes nothing (a read-only method) may be sent again.
	BeforeReply
	// AfterReply: part of the reply reached the client: the call is over.
	AfterReply
)

// Failed decides what an error of the current attempt means: the failure the client is
// told, or that the call goes to another endpoint instead (retry). replayable says whether
// the data path still holds the whole call to send again. An endpoint that refused the
// connection is ejected for a moment (passive outlier detection).
func (c *Call) Failed(ctx context.Context, err error, stage Stage, replayable bool) (retry bool, f *Failure) {
	return c.Retry(ctx, AttemptOf(err, stage, replayable))
}

// Replayable reports whether the data path should keep the call's request to send it
// again should an attempt fail: a call it may retry after the backend received it.
func (c *Call) Replayable() bool { return c.method != nil && c.method.ReadOnly }

// Answer records that the balancer answers the call with f.
func (c *Call) Answer(f *Failure) {
	c.Rec.Code = f.Code
	if !c.Rec.GRPC {
		c.Rec.Status = f.HTTPStatus()
	}
	switch {
	case f.Warn:
		c.port.Log.Warn("call failed", "backend", c.Rec.Backend, "endpoint", c.Rec.Endpoint, "method", c.Rec.Method, "error", f)
	case f.Code != codes.Canceled && f.Cause != nil:
		c.port.Log.Debug("call failed", "backend", c.Rec.Backend, "endpoint", c.Rec.Endpoint, "method", c.Rec.Method, "error", f)
	}
}

// Finish ends the call at now: the endpoint's count of it, and its record, which goes to
// the observer. grpcStatus is the grpc-status the backend sent ("" when none); it is the
// call's code unless the balancer answered with its own.
func (c *Call) Finish(now time.Time, grpcStatus string) {
	c.fillRecord() // the reply's Milvus Status, which outlier detection reads
	c.settle(grpcStatus)
	c.observeLatency(now, grpcStatus)
	c.Done()
	c.finishCache()
	c.scan = nil // nothing reads the messages after this; they stay for the next call (spare)
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
