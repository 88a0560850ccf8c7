package relay

import (
	"encoding/binary"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// The reply cache in the relay: the bytes only (the rules are call.Call's, cache.go
// there). A call the cache may answer is held, before Pick, until its whole request is
// here; then it is answered from the cache or sent, and its reply kept for the store.

// cacheState is a stream's part of the reply cache. Guarded by the stream's mu.
type cacheState struct {
	looked  bool   // the lookup was made, or the call is not one to look up
	waiting bool   // held for the lookup: the request is not whole yet
	limit   int    // the most of the request held for it
	keep    int    // the most of the reply kept for the store; 0: nothing is kept
	reply   []byte // the reply kept
}

// cacheLocked runs before Pick. It reports true when the call is not to be sent now: it
// waits for the rest of its request (fromClientData calls connectLocked again), or the
// cache answered it. s.mu held.
func (s *stream) cacheLocked(b *batch) bool {
	c := &s.cache
	if c.looked {
		return false
	}
	if c.limit == 0 {
		if c.limit = s.call.CacheHold(); c.limit == 0 {
			c.looked = true
			return false
		}
	}
	msg := s.replay
	whole := wholeMessage(msg)
	if !whole && !s.clientEnded && s.keep && len(msg) < c.limit {
		c.waiting = true
		return true
	}
	c.looked, c.waiting = true, false
	if reply := s.call.CacheLookup(msg, time.Now()); reply != nil {
		s.answerCachedLocked(reply, b)
		return true
	}
	c.keep = s.call.CacheKeep()
	return false
}

// wholeMessage reports whether p is exactly one whole gRPC message.
func wholeMessage(p []byte) bool {
	return len(p) >= call.PrefixLen && int(binary.BigEndian.Uint32(p[1:call.PrefixLen])) == len(p)-call.PrefixLen
}

// answerCachedLocked answers the call with a reply from the cache: headers, the message
// (as the client's window allows), grpc-status 0. No backend stream was opened. s.mu held.
func (s *stream) answerCachedLocked(reply []byte, b *batch) {
	s.returnQueuedUpLocked(b)
	s.up.closed, s.backendEnded = true, true
	s.respStarted, s.statusFromHdr = true, "0"
	if s.cc.lockWrite() {
		s.cc.writeHeaders(s.cid, false, []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}})
		s.cc.unlockWrite(b)
	}
	s.sendLocked(&s.down, s.cc, s.cid, reply, false, b)
	fp := getFields()
	*fp = append(*fp, hpack.HeaderField{Name: "grpc-status", Value: "0"})
	if s.down.queuedLen() > 0 {
		s.down.trailers, s.down.hasTrl = fp, true // drainLocked sends and returns them
	} else {
		if s.cc.lockWrite() {
			s.cc.writeHeaders(s.cid, true, *fp)
			s.cc.unlockWrite(b)
		}
		putFields(fp)
		s.down.closed = true
	}
	s.maybeCompleteLocked(b)
}

// returnQueuedUpLocked drops the request bytes queued for a backend that will not be
// sent them, giving their connection window back to the client. s.mu held.
func (s *stream) returnQueuedUpLocked(b *batch) {
	if n := int64(s.up.queuedLen()); n > 0 && s.cc.lockWrite() {
		s.cc.consumedLocked(n)
		s.cc.unlockWrite(b)
	}
	s.up.reset()
}

// keepReplyLocked adds reply bytes p to what is kept for the store, or stops keeping
// past the entry cap (known from the reply's length prefix). s.mu held.
func (s *stream) keepReplyLocked(p []byte) {
	c := &s.cache
	if c.reply == nil && len(p) >= call.PrefixLen {
		size := int(binary.BigEndian.Uint32(p[1:call.PrefixLen])) + call.PrefixLen
		if size > c.keep {
			c.keep = 0
			return
		}
		c.reply = make([]byte, 0, size)
	}
	if len(c.reply)+len(p) > c.keep {
		c.keep, c.reply = 0, nil
		return
	}
	c.reply = append(c.reply, p...)
}

// storeReplyLocked gives the kept reply to the cache as the call ends. s.mu held.
func (s *stream) storeReplyLocked() {
	if s.cache.keep > 0 && s.cache.reply != nil && !s.clientReset {
		s.call.CacheStore(s.cache.reply, s.statusFromHdr)
	}
	s.cache = cacheState{looked: true}
}
