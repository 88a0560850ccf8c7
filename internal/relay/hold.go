package relay

import (
	"encoding/binary"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/mirror"
)

// A call whose route depends on its first request message (a database, collection or
// consistency condition, or a rate limit on names) is held: its request bytes queue in
// up, as they do while a backend connection is dialed, and go to call.Hold until the
// decision is made; then the call connects and the queue drains, or the balancer answers.
//
// Flow control while holding: the held bytes are not acknowledged to the client until
// they are sent on, like any queued bytes. A call holds at most call.HoldLimit bytes, the
// HTTP/2 initial window, so a client can always send them all, even one that has not read
// the balancer's SETTINGS. The calls of one connection share its window (clientConnWindow);
// were many of them to hold at once, each waiting for more, the window could run out
// with none of them able to decide. So the connection's held bytes are bounded by
// holdPerConn, well below its window: a call that would hold more is decided at once with
// what was read of it (names not read are unknown, as past call.MaxNameBytes).

// holdPerConn bounds the request bytes one client connection's calls hold for their
// decisions: 16 calls at call.HoldLimit.
const holdPerConn = clientConnWindow / 4

// holdLocked gives request bytes p (nil: the request ended) to the waiting decision and,
// once it is made, acts on it. p was queued in up already. s.mu held.
func (s *stream) holdLocked(p []byte, b *batch) {
	n := int64(len(p))
	s.held += n
	over := s.sc.held.Add(n) > holdPerConn
	d, ready := s.call.Hold(p, s.clientEnded || over)
	if !ready {
		return
	}
	s.releaseHeldLocked()
	s.holding = false
	s.routedLocked(d, b)
}

// releaseHeldLocked takes the stream's held bytes off its connection's count. s.mu held.
func (s *stream) releaseHeldLocked() {
	if s.held > 0 {
		s.sc.held.Add(-s.held)
		s.held = 0
	}
}

// replyLocked answers the call with msg, a message of the method's reply type, and
// grpc-status 0: what Milvus sends for a call over its quota. s.mu held.
func (s *stream) replyLocked(msg []byte, b *batch) {
	framed := make([]byte, call.PrefixLen+len(msg))
	binary.BigEndian.PutUint32(framed[1:], uint32(len(msg)))
	copy(framed[call.PrefixLen:], msg)
	s.answerLocked(framed, b)
}

// answerLocked answers the call with framed, one gRPC message, and grpc-status 0, without
// a backend: the request is not wanted any more. framed is not changed. s.mu held.
func (s *stream) answerLocked(framed []byte, b *batch) {
	s.dropUpLocked(b)
	s.up.closed = true
	s.backendEnded = true // there is none
	if s.cc.lockWrite() {
		s.cc.writeHeaders(s.cid, false, []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}})
		s.cc.unlockWrite(b)
	}
	s.respStarted = true
	s.sendLocked(&s.down, s.cc, s.cid, framed, false, b)
	tr := s.keepReply([]hpack.HeaderField{{Name: "grpc-status", Value: "0"}})
	s.statusFromHdr = "0"
	if s.down.queuedLen() > 0 {
		s.down.trailers, s.down.hasTrl = tr, true // drainLocked sends and clears them
	} else {
		if s.cc.lockWrite() {
			s.cc.writeHeaders(s.cid, true, *tr)
			s.cc.unlockWrite(b)
		}
		clearFields(tr)
		s.down.closed = true
	}
	s.maybeCompleteLocked(b)
}

// dropUpLocked drops the request bytes waiting to go to the backend, and gives the client
// connection back the window of those not acknowledged yet (the head of the queue that
// was sent to a failed attempt was). s.mu held.
func (s *stream) dropUpLocked(b *batch) {
	n := int64(s.up.queuedLen()) - s.reacked
	s.reacked = 0
	s.up.reset()
	if n > 0 {
		s.cc.returnConnWindow(n, b)
	}
}

// mirrorLocked hands a copy of the call to its mirror (call.Mirror) once the whole
// request is here, without waiting for it: what the mirror does never reaches the call.
// A request not kept whole (over call.MirrorLimit) is not copied, counted. A call the
// reply cache may answer is copied only once it missed (connectLocked): a hit never
// reached the primary, so the mirror is not asked either (docs/cache.md). s.mu held.
func (s *stream) mirrorLocked() {
	mb, sender := s.call.Mirror(), s.sc.sv.Mirror
	if mb == nil || sender == nil || s.mirrored || !s.clientEnded || s.holding || s.reqFields == nil || !s.cache.looked {
		return
	}
	s.mirrored = true
	if !s.keep || int64(len(s.replay)) != s.upReceived {
		sender.Dropped(mb.Key, "not_kept")
		return
	}
	f := *s.reqFields
	sender.Submit(&mirror.Copy{Backend: mb, Method: s.call.Rec.Method, Authority: f[authorityField].Value,
		Path: f[pathField].Value, Header: append([]hpack.HeaderField(nil), f[pathField+1:]...),
		Body: append([]byte(nil), s.replay...)})
}
