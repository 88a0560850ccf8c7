package relay

import (
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// A held reply: for a call that may go to another endpoint (call.HoldReply), the reply's
// headers wait here until the per-call decision has read the Milvus Status at the start
// of its first message (call.ReplyHeld), and the reply's first bytes wait behind them in
// the stream's down queue (outFlow.held). The Status is the reply's first field, so the
// first DATA frame nearly always tells, and the headers go on in the same batch of
// writes as that frame's data: nothing is copied and no write is added. A reply that
// says the proxy is not serving is left with its attempt, and the call goes to another
// endpoint as a failed attempt would (retryLocked). At most call.ReplyHoldLimit bytes of
// a reply are held.

// holdReplyLocked holds the reply headers fields (a copy) when the per-call decision
// wants the reply's Status read first and the whole request is still here to send again.
// It reports whether it did. s.mu held.
func (s *stream) holdReplyLocked(fields []hpack.HeaderField) bool {
	if !s.replayableLocked() || !s.call.HoldReply() {
		return false
	}
	s.replyHold, s.down.held = s.keepReply(fields), true
	return true
}

// keepReply copies fields into the stream's replyList, for a list kept past the function
// that built it: a held reply's headers, trailers behind queued data. s.mu held.
func (s *stream) keepReply(fields []hpack.HeaderField) *[]hpack.HeaderField {
	p := keptList(&s.replyList)
	*p = append(*p, fields...)
	return p
}

// heldDataLocked decides on a held reply once n more of its bytes came (given to
// call.Response; end: the backend ended the stream with them): hold them too, send the
// reply on, or leave the attempt for another endpoint, which it reports (the bytes go
// with the attempt). s.mu held.
func (s *stream) heldDataLocked(n int, end bool, b *batch) (left bool) {
	switch s.call.ReplyHeld(s.down.queuedLen()+n, s.readReply && !end) {
	case call.ReplyWait:
		return false // queued behind the held headers (down.held)
	case call.ReplyNotServing:
		// Another endpoint may serve the read; when the decision says none may (no
		// attempts or budget left), the client gets the reply as it came.
		if retried, _ := s.retryLocked(call.BeforeReply, call.ErrNotServing, b); retried {
			return true
		}
	}
	s.sendHeldLocked(b)
	return false
}

// sendHeldLocked sends the held reply on: its headers, then what of it was held. The
// reply has begun: the request is not sent again. s.mu held.
func (s *stream) sendHeldLocked(b *batch) {
	fp := s.replyHold
	s.replyHold, s.down.held = nil, false
	s.releaseReplayLocked()
	s.respStarted = true
	if s.cc.lockWrite() {
		s.cc.writeHeaders(s.cid, false, *fp)
		s.cc.unlockWrite(b)
	}
	clearFields(fp)
	if n := s.drainLocked(&s.down, s.cc, s.cid, b); n > 0 {
		s.ackLocked(s.bc, s.bid, &s.down, s.backendEnded, n, b)
	}
}

// dropReplyLocked forgets a held reply, which never reached the client: its headers, its
// bytes, what was read and counted of them. Its attempt failed and the call goes to
// another endpoint, or the call ended. s.mu held.
func (s *stream) dropReplyLocked() {
	if s.replyHold == nil {
		return
	}
	clearFields(s.replyHold)
	s.replyHold = nil
	s.down.reset()
	s.down.held, s.down.end = false, false
	s.statusFromHdr, s.readReply = "", true
	s.downScan = call.Scanner{}
	s.downReceived = 0
	s.cache.reply = nil
}

// replayableLocked reports whether the whole request is here to be sent again: nothing
// of it was sent (the queue holds it), it is kept (keepLocked), or none came yet. s.mu
// held.
func (s *stream) replayableLocked() bool {
	return s.reqFields != nil && (s.bc == nil || s.keep || s.upReceived == 0)
}
