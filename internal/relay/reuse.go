package relay

import (
	"time"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// Streams used again. A Search call's stream (1,136 bytes, most of it the per-call
// decision and its record) was the relay's one allocation per call, and with it most of
// the garbage collector's work under Search (docs/benchmarks.md). A finished stream goes
// to its client connection's free list and the connection's next call takes it, so it
// is safe to reset only if nothing but the call's own code can still reach it:
//
//   - The client connection's table and its frames: only the connection's reader looks
//     streams up there and acts on them, and the reader is also the one goroutine that
//     takes a stream from the free list (startCall), so it never holds a stale one.
//   - A backend connection's table: its reader looks a stream up by id and then takes
//     the stream's lock; meanwhile the call may end and the stream start another call.
//     Every method it calls checks, under the lock, that the stream is still that id on
//     that connection (onLocked): backend stream ids are never used twice on a
//     connection. The lists taken when a backend connection closes or sends GOAWAY
//     (backendGone) check the connection: no stream opens on it after.
//   - Everything else that keeps a pointer to the stream pins it, and a pinned stream is
//     left to the garbage collector: the deadline timer when Stop could not cancel it,
//     the dial goroutine, the lists of streams waiting for a connection's window or room
//     (blocked, deferred).
//   - A stream taken from the free list is reset and initialised under its lock, and
//     stays finished unless it enters the table (a closing connection's clientGone may
//     still reach it through a list taken before).
//   - A stream moves to another client connection only through spareStreams, from a
//     connection that parks or falls silent and is not closed. Its reader looks streams
//     up only in its table, which a finished stream has left, and a close takes its list
//     after marking the connection closed, so that list holds no stream handed on.
//
// The observers of the record copy what they keep (call.Observer).

// freeStreams bounds the finished streams a client connection keeps for its next calls:
// about its calls in flight at once (the bench's connections carry 8). A connection keeps
// them while it is in use, also between calls (a client with one call at a time keeps
// one: 1,152 bytes, and about 3 KiB of header lists and scanners, which would otherwise be
// in their pools); one that parks or is silent for PingInterval hands them to
// spareStreams, so idle connections cost nothing more.
const freeStreams = 8

// spareStreams keeps the finished streams of connections that parked or fell silent, for
// the next call of any connection whose own list is empty. Every call of a client that
// calls less often than parkAfter comes on a parked connection: 2,000 clients making a
// Search a second each had a new stream made for each call, with its header lists and
// scanners taken from their pools again, 1.3 of the 2.1 KB a call allocated, and that
// set the collector's pace (docs/benchmarks.md, "Many clients, sixth round"). As many
// are taken as connections resume with a call at once; the bound, and bufs' trim of
// what goes unused, keep a burst of parks from holding thousands.
var spareStreams = bufs.NewFree(64, func() *stream { return nil })

// onLocked reports whether s is still stream id on connection c (its backend's or its
// client's). s.mu held.
func (s *stream) onLocked(c *h2conn, id uint32) bool {
	return c == s.bc && id == s.bid || c == s.cc && id == s.cid
}

// freeStreamLocked takes one of the connection's finished streams, or a spare one, or
// returns nil. c.mu held.
func (s *clientConn) freeStreamLocked() *stream {
	n := len(s.free)
	if n == 0 {
		return spareStreams.Get()
	}
	st := s.free[n-1]
	s.free[n-1] = nil
	s.free = s.free[:n-1]
	return st
}

// newStream returns a stream for a new call, locked: st (a finished one of the
// connection's, from freeStreamLocked) reset, or a new one when st is nil.
func newStream(st *stream) *stream {
	if st == nil {
		st = new(stream)
		st.mu.Lock()
		return st
	}
	st.mu.Lock()
	st.streamState = streamState{} // and st.call is reset by its Begin
	return st
}

// release gives back what a finished stream keeps for its next call (its header list,
// its call's scanners) when it will have none: dropped from its connection's free list,
// or not put there because the list was full. It takes no lock: once dropped, only the
// goroutine that dropped it reaches these two (a backend reader that still finds the
// stream reads whether it is that id there, and that it finished).
func (st *stream) release() {
	putFields(st.reqList)
	putFields(st.replyList)
	st.reqList, st.replyList = nil, nil
	st.call.Release()
}

// dropFree empties the free list: into spareStreams, unless the connection is closed or
// the list is full. A stream's state is reset when a call takes it (newStream), not
// here: c.mu is held, and a stream's lock comes before its connection's (finishLocked,
// writes). Until then a spare stream still points at this connection: at most the
// list's bound of them. c.mu held.
func (s *clientConn) dropFree() {
	for _, st := range s.free {
		if s.c.closed || !spareStreams.Put(st) {
			st.release()
		}
	}
	s.free = nil
}

// armLocked arms the stream's deadline timer for d: the one it had, stopped when its
// last call finished (else the stream was pinned and is not here), or a new one. s.mu held.
func (s *stream) armLocked(d time.Duration) {
	s.timed = true
	if s.timer != nil {
		s.timer.Reset(d)
		return
	}
	s.timer = time.AfterFunc(d, s.expire)
}

// keepStream puts a finished stream in the free list, if there is room. c.mu held.
func (s *clientConn) keepStream(st *stream) {
	if len(s.free) < freeStreams {
		s.free = append(s.free, st)
	} else {
		st.release()
	}
}
