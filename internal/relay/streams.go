package relay

import (
	"context"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// clientStream is one stream of a client connection: a gRPC call relayed to a backend
// (*stream) or a request served by Server.REST (*restStream). The client connection keeps
// them in one table, guarded by its mu, and hands each the frames of its id.
type clientStream interface {
	// fromClientData takes a DATA frame; an error is a stream or connection error.
	fromClientData(f *http2.DataFrame, b *batch) error
	// fromClientTrailers takes a HEADERS frame after the first (trailers, or the end).
	fromClientTrailers(f *headerBlock, b *batch) error
	// fromClientReset ends the stream: the client reset it, or it was reset for an error.
	fromClientReset(b *batch)
	// fromClientWindow opens (or, after a SETTINGS change, shrinks) the stream's send
	// window by delta; an error means it would overflow.
	fromClientWindow(delta int64, b *batch) error
	// clientGone ends the stream when its connection closed.
	clientGone(b *batch)
}

// idle reports whether id names a stream the client has not opened (RFC 9113 §5.1):
// above every id it used, or even (the relay never pushes).
func (s *clientConn) idle(id uint32) bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return id%2 == 0 || id > c.lastID
}

// lookupOrIdle is lookup and idle under one round of the connection's lock (a call's
// HEADERS asks both).
func (s *clientConn) lookupOrIdle(id uint32) (clientStream, bool) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.streams[id], id%2 == 0 || id > c.lastID
}

// lookup finds an open stream by id.
func (s *clientConn) lookup(id uint32) clientStream {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.streams[id]
}

// all returns the open streams.
func (s *clientConn) all() []clientStream {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	out := make([]clientStream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	return out
}

// add puts st in the table, unless the connection closed; init runs under the table's
// lock with the client's initial stream window. The connection's first open stream makes
// it active (for the idle timeout).
func (s *clientConn) add(id uint32, st clientStream, init func(peerWin int64)) bool {
	c := s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	init(int64(c.peerWin))
	s.streams[id] = st
	if _, ok := st.(*restStream); ok {
		s.nrest++
	}
	first := !c.active
	c.active = true
	c.mu.Unlock()
	if first && s.o.OnActive != nil {
		s.o.OnActive(true)
	}
	return true
}

// remove takes a finished stream out of the table and runs the hooks of a stream's end:
// the idle clock, the rapid-reset guard (early: the client reset it as soon as it began),
// and the close of a draining connection with its last stream. reuse, when not nil, is
// st, which a later call may use (reuse.go). It reports false when st was not in the
// table (it was removed before).
func (s *clientConn) remove(id uint32, st clientStream, reuse *stream, early bool, b *batch) bool {
	c := s.c
	c.mu.Lock()
	if s.streams[id] != st {
		c.mu.Unlock()
		return false
	}
	delete(s.streams, id)
	if reuse != nil {
		s.keepStream(reuse)
	}
	if _, ok := st.(*restStream); ok {
		s.nrest--
	}
	// Whether it was the last stream is read under the same lock as the removal: one
	// round of the connection's lock fewer per call.
	last := len(s.streams) == 0 && c.active
	if last {
		c.active = false
	}
	drained := c.goAway && len(s.streams) == 0
	c.mu.Unlock()
	s.afterStreamEnd(last, drained, early, b)
	return true
}

// resetStream resets stream id for an error of the client's (RST_STREAM with code).
func (s *clientConn) resetStream(id uint32, code http2.ErrCode, b *batch) {
	if st := s.lookup(id); st != nil {
		st.fromClientReset(b)
	}
	if s.c.lockWrite() {
		_ = s.c.fr.WriteRSTStream(id, code)
		s.c.unlockWrite(b)
	}
}

// open starts a stream from the client's HEADERS: a gRPC call relayed to a backend
// (stream.go), or any other request, served by Server.REST (rest.go).
func (s *clientConn) open(f *headerBlock, b *batch) error {
	c := s.c
	id := f.StreamID
	h, ok := checkRequest(f)
	grpc := ok && !f.Truncated && f.Pseudo(pMethod) == "POST" && isGRPCContentType(h.contentType)
	c.mu.Lock()
	c.lastID = id
	refuse := c.goAway || uint32(len(s.streams)) >= s.maxStreams()
	notice := s.drain == drainWanted
	var free *stream // a gRPC call's stream, taken under this round of the lock
	if grpc && !refuse {
		free = s.freeStreamLocked()
	}
	c.mu.Unlock()
	if notice {
		// A connection told to drain before its first call: this call is taken (its id
		// is the last one now), then the client is told to go (drain.go).
		s.noticeDrain()
	}
	if refuse {
		if c.lockWrite() {
			_ = c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
			c.unlockWrite(b)
		}
		return nil
	}
	if f.Truncated {
		s.countError("headers_too_large")
		s.rejectHeaders(id, b)
		return nil
	}
	if !ok {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if !grpc {
		// Not gRPC: served by sv.REST (REST, redirects, errors as HTTP statuses).
		s.startREST(f, h.contentLength, b)
		return nil
	}
	s.startCall(f, &h, free, b)
	return nil
}

// startCall starts a gRPC call: routed and balanced by the per-call decision, then
// relayed frame by frame to the endpoint chosen, on free (a finished stream of the
// connection's) or a new stream.
func (s *clientConn) startCall(f *headerBlock, h *requestHead, free *stream, b *batch) {
	c := s.c
	id := f.StreamID
	path, authority := f.Pseudo(pPath), f.Pseudo(pAuthority)
	if authority == "" {
		authority = h.host
	}
	st := newStream(free) // locked: a stream that ended (reuse.go) may still be reached
	defer st.mu.Unlock()
	st.sc, st.cc, st.cid = s, c, id
	now := time.Now() // the one clock reading of the call's start: Begin (and so the deadline), Pick
	st.call.Begin(s.sv.Port, path, true, now)
	st.call.Rec.Client = s.addr
	st.call.Rec.TLSVersion = s.tlsVersion
	st.call.Metadata(f.RegularFields())
	st.clientEnded = f.StreamEnded()
	st.readReq, st.readReply = !st.clientEnded, true
	st.keep = true // until the reply begins or the request outgrows call.ReplayLimit

	st.down.acct = &c.respQueued
	if !s.add(id, st, func(peerWin int64) { st.down.win = peerWin }) {
		st.finished = true // never started: nothing to release, nothing to record
		return
	}

	sni := s.sni
	// The upstream header list is built now, while the header block is valid: the
	// decision may wait for the first message. Its :scheme follows the backend chosen.
	st.reqFields = s.requestFields(f, st.call.Trace(), keptList(&st.reqList))
	if d, ok := st.call.Timeout(h.timeout); ok {
		st.armLocked(d)
	}
	d := st.call.Route(&call.Request{Authority: authority, SNI: sni, Memo: &s.route,
		Request: router.Request{Path: path, Method: "POST", Headers: f.RegularFields(), Source: s.src}})
	if d.Wait {
		st.holding = true
		if st.clientEnded {
			st.holdLocked(nil, b) // no message: decided by what the headers say
		}
		return
	}
	st.routedLocked(d, b)
}

// routedLocked acts on the call's decision: to its backend, or answered here. s.mu held.
func (s *stream) routedLocked(d call.Decision, b *batch) {
	switch {
	case d.Fail != nil:
		s.failLocked(d.Fail, b)
	case d.Reply != nil:
		s.replyLocked(d.Reply, b)
	default:
		if s.call.Backend().TLS {
			(*s.reqFields)[schemeField].Value = "https"
		}
		s.keptLocked()
		s.mirrorLocked()
		s.connectLocked(b)
	}
}

// expire fails a call whose grpc-timeout passed.
func (s *stream) expire() {
	var b batch
	defer b.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.call.Backend() == nil {
		s.failLocked(s.call.Expired(), &b) // still held: no backend has it
		return
	}
	// Reported as the attempt's failure: with no reply yet, the deadline counts against
	// the endpoint (outlier detection); the client gets DEADLINE_EXCEEDED.
	s.failOrRetryLocked(call.BeforeReply, context.DeadlineExceeded, &b)
}

// rejectHeaders answers a request whose header list is over the limit: the headers were
// not kept, so it is answered without being routed.
func (s *clientConn) rejectHeaders(id uint32, b *batch) {
	f := call.HeadersTooLarge()
	fields := []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-status", Value: f.GRPCStatus()}, {Name: "grpc-message", Value: f.GRPCMessage()}}
	if s.c.lockWrite() {
		s.c.writeHeaders(id, true, fields)
		s.c.unlockWrite(b)
	}
}

// requestFields puts in p the headers sent to the backend: the pseudo-header fields of the
// request, then the regular fields by the one upstream rule (call.Conn.Upstream). Its
// :scheme is http until the call's backend is known (routedLocked).
func (s *clientConn) requestFields(f *headerBlock, trace call.TraceContext, p *[]hpack.HeaderField) *[]hpack.HeaderField {
	out := append(*p,
		hpack.HeaderField{Name: ":method", Value: "POST"},
		hpack.HeaderField{Name: ":scheme", Value: "http"}, // schemeField
		hpack.HeaderField{Name: ":authority", Value: f.Pseudo(pAuthority)},
		hpack.HeaderField{Name: ":path", Value: f.Pseudo(pPath)})
	*p = s.up.Upstream(out, f.RegularFields(), true, trace)
	return p
}

// The indexes of :scheme, :authority and :path in requestFields's list.
const (
	schemeField    = 1
	authorityField = 2
	pathField      = 3
)

// afterStreamEnd runs the hooks of a stream's end (see remove): last, it was the
// connection's last stream; drained, the last of a draining connection.
func (s *clientConn) afterStreamEnd(last, drained, early bool, b *batch) {
	c := s.c
	if last {
		c.sk.ParkSoon(parkAfter)
	}
	if last && s.o.OnActive != nil {
		s.o.OnActive(false)
	}
	if s.o.OnStreamEnd != nil && s.o.OnStreamEnd(early) {
		s.sv.Port.Log.Warn("closing connection: most of its streams were reset by the client as soon as they began (HTTP/2 rapid reset)", "remote", c.nc.RemoteAddr().String())
		s.countError("too_many_early_resets")
		_ = c.nc.Close()
		return
	}
	if drained {
		// Shutdown was called and this was the last call: let its frames out, then close
		// (on a goroutine: the stream's mu is held, and the client may be slow to read).
		c.flush(false)
		go func() {
			c.flushWait()
			_ = c.nc.Close()
		}()
	}
}
