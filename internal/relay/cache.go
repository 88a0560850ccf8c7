package relay

import (
	"encoding/binary"
	"time"

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
	// Held bytes count in the connection's, as a routing decision's do (hold.go): past
	// holdPerConn the call is looked up with what it has (and goes on uncached).
	delta := int64(len(msg)) - s.held
	s.held += delta
	over := s.sc.held.Add(delta) > holdPerConn
	if !whole && !s.clientEnded && s.keep && len(msg) < c.limit && !over {
		c.waiting = true
		return true
	}
	s.releaseHeldLocked()
	c.looked, c.waiting = true, false
	if reply := s.call.CacheLookup(msg, time.Now()); reply != nil {
		s.answerLocked(reply, b) // shared by the calls it answers: only read
		return true
	}
	c.keep = s.call.CacheKeep()
	return false
}

// wholeMessage reports whether p is exactly one whole gRPC message.
func wholeMessage(p []byte) bool {
	return len(p) >= call.PrefixLen && int(binary.BigEndian.Uint32(p[1:call.PrefixLen])) == len(p)-call.PrefixLen
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
