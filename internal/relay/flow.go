package relay

// A relayed stream's two directions (outFlow): the data queued for window, and the
// bookkeeping of the windows both ways (what is sent on, acknowledged back, deferred).

import (
	"sync/atomic"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// outFlow is one direction of a relayed stream, seen from the side it is sent to.
type outFlow struct {
	win      int64    // the destination stream's send window
	chunks   [][]byte // data waiting for window (a copy: frame buffers are reused)
	poff     int      // read offset in chunks[0]
	qlen     int
	end      bool                 // END_STREAM follows pending
	trailers *[]hpack.HeaderField // the stream's replyList
	hasTrl   bool                 // trailers follow pending
	closed   bool                 // END_STREAM or RST_STREAM was sent: nothing more goes this way
	held     bool                 // data waits for the held reply headers (down only; replyhold.go)
	waiting  bool                 // in the destination's blocked list
	owed     int64
	// deferred: owed stream window is held back from the sender because the client
	// connection has clientConnBuffered bytes waiting (down only; see ackLocked).
	deferred bool
	// grown: the backend's stream window grew from backendStreamWindow to
	// streamWindow, which it does once data is delivered to the client (down only).
	grown bool
	// acct, if set, follows qlen: the client connection's count of bytes queued for it.
	acct *atomic.Int64
}

// queueChunk is the unit of queued data; chunks are pooled, so a stream that waits for
// window costs no allocation and gives the memory back as soon as it catches up. A
// bounded free list rather than a sync.Pool: every collection empties a sync.Pool, and
// while uploads stream the relay allocates little else, so collections (at the low
// target procmem.TuneGC sets then) came often enough to make the queues allocate their
// chunks anew, for a higher peak (docs/benchmarks.md).
const queueChunk = 64 << 10

var chunkPool = bufs.New(64, queueChunk)

// queuedLen is the number of bytes waiting to be sent.
func (o *outFlow) queuedLen() int { return o.qlen }

// head is the first contiguous piece of the queue.
func (o *outFlow) head() []byte {
	if len(o.chunks) == 0 {
		return nil
	}
	return o.chunks[0][o.poff:]
}

func (o *outFlow) queue(p []byte) {
	o.qlen += len(p)
	if o.acct != nil {
		o.acct.Add(int64(len(p)))
	}
	for len(p) > 0 {
		if n := len(o.chunks); n == 0 || len(o.chunks[n-1]) == cap(o.chunks[n-1]) {
			o.chunks = append(o.chunks, chunkPool.Get())
		}
		last := &o.chunks[len(o.chunks)-1]
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
	}
}

// consume drops n sent bytes from the head of the queue.
func (o *outFlow) consume(n int) {
	o.qlen -= n
	if o.acct != nil {
		o.acct.Add(-int64(n))
	}
	o.poff += n
	for len(o.chunks) > 0 && o.poff >= len(o.chunks[0]) && (len(o.chunks) > 1 || o.qlen == 0) {
		o.poff -= len(o.chunks[0])
		chunkPool.Put(o.chunks[0])
		o.chunks[0] = nil
		o.chunks = o.chunks[1:]
	}
	if len(o.chunks) == 0 {
		o.chunks, o.poff = nil, 0
	}
}

// reset drops the queue.
func (o *outFlow) reset() {
	if o.acct != nil {
		o.acct.Add(-int64(o.qlen))
	}
	for _, c := range o.chunks {
		chunkPool.Put(c)
	}
	o.chunks, o.poff, o.qlen = nil, 0, 0
}

// sendLocked sends p (and END_STREAM after it if end) on o's direction to dst, as far as
// the windows allow, and queues the rest. It returns how many bytes of p went out now.
// s.mu held; dst may be nil while the backend stream is being opened.
func (s *stream) sendLocked(o *outFlow, dst *h2conn, id uint32, p []byte, end bool, b *batch) int64 {
	if o.closed {
		return 0
	}
	if dst == nil || o.held || o.queuedLen() > 0 || o.hasTrl {
		o.queue(p)
		o.end = o.end || end
		return 0
	}
	if !dst.lockWrite() {
		return 0
	}
	sent := s.writeDataLocked(o, dst, id, p, end)
	if rest := p[sent:]; len(rest) > 0 {
		o.queue(rest)
		o.end = end
		s.blockLocked(o, dst)
	}
	dst.unlockWrite(b)
	return int64(sent)
}

// writeDataLocked writes DATA frames within the windows. Both s.mu and dst.mu held.
func (s *stream) writeDataLocked(o *outFlow, dst *h2conn, id uint32, p []byte, end bool) int {
	sent := 0
	for {
		n := int64(len(p) - sent)
		n = min(n, o.win, dst.sendWin, int64(dst.peerFrame), dst.roomLocked())
		if n < 0 {
			n = 0
		}
		last := sent+int(n) == len(p)
		if n == 0 && !(last && end) {
			return sent
		}
		dst.appendData(id, last && end, p[sent:sent+int(n)])
		o.win -= n
		dst.sendWin -= n
		sent += int(n)
		if last {
			if end {
				o.closed = true
			}
			return sent
		}
	}
}

// blockLocked notes that o waits for window on dst: the connection's, when that is what
// ran out (a stream window opening arrives as a WINDOW_UPDATE for the stream itself).
func (s *stream) blockLocked(o *outFlow, dst *h2conn) {
	full := dst.roomLocked() <= 0
	if full {
		dst.full = true // the writer wakes the blocked streams when it takes the buffer
	}
	if (dst.sendWin <= 0 || full) && !o.waiting {
		o.waiting = true
		dst.blocked = append(dst.blocked, s)
		s.pinned = true // the list outlives the call
	}
}

// drainLocked sends what o has pending, then its trailers or END_STREAM. It returns the
// bytes sent. s.mu held.
func (s *stream) drainLocked(o *outFlow, dst *h2conn, id uint32, b *batch) int64 {
	if dst == nil || o.closed || o.held || (o.queuedLen() == 0 && !o.end && !o.hasTrl) {
		return 0
	}
	if !dst.lockWrite() {
		return 0
	}
	o.waiting = false
	sent := 0
	for {
		seg := o.head()
		lastSeg := len(seg) == o.queuedLen()
		n := s.writeDataLocked(o, dst, id, seg, lastSeg && o.end && !o.hasTrl)
		o.consume(n)
		sent += n
		if n < len(seg) || lastSeg {
			break
		}
	}
	if o.queuedLen() == 0 {
		if o.hasTrl && !o.closed {
			dst.writeHeaders(id, true, *o.trailers)
			clearFields(o.trailers)
			o.hasTrl, o.trailers, o.closed = false, nil, true
		}
	} else {
		s.blockLocked(o, dst)
	}
	dst.unlockWrite(b)
	return int64(sent)
}

// ackLocked returns n bytes received from src on stream id, now sent on, to src's
// windows. s.mu held.
//
// Up (client to backend), the connection window is returned here too: the client's
// connection window (clientConnWindow) bounds what one client connection can make
// the relay hold. Down (backend to client), the backend's connection window was returned
// when the bytes arrived (fromBackendData): the backend connection is shared by many
// clients, and a client that does not read must not stall the others' calls on it. What
// bounds the relay there is the stream window, returned only here, and, per client
// connection, clientConnBuffered: past it the stream windows are held back too.
func (s *stream) ackLocked(src *h2conn, id uint32, o *outFlow, srcEnded bool, n int64, b *batch) {
	if n <= 0 || src == nil {
		return
	}
	down := o == &s.down
	if down && srcEnded {
		return
	}
	if down {
		o.owed += n
		if s.cc.respQueued.Load() > clientConnBuffered {
			s.deferLocked()
			return
		}
		threshold := int64(streamWindow / 4)
		if !o.grown {
			threshold = backendStreamWindow / 4
		}
		if o.owed < threshold {
			return
		}
		// The window grows with the first update: a reply shorter than a quarter of its
		// first window (a Search's) ends without one, and its backend reads no
		// WINDOW_UPDATE for a stream it has closed.
		s.growLocked()
		if !src.lockWrite() {
			return
		}
		_ = src.fr.WriteWindowUpdate(id, uint32(o.owed))
		o.owed = 0
		src.unlockWrite(b)
		return
	}
	if s.reacked > 0 {
		// Sent again after a failed attempt: acknowledged to the client the first time.
		k := min(n, s.reacked)
		s.reacked -= k
		if n -= k; n == 0 {
			return
		}
	}
	if srcEnded {
		// No stream window to give back: only the connection's, which is seldom due.
		src.returnConnWindow(n, b)
		return
	}
	if !src.lockWrite() {
		return
	}
	src.refreshLocked(id, &o.owed, srcEnded, n)
	src.unlockWrite(b)
}

// refreshDue says whether owed bytes of a window of size win received from a peer are
// to be given back now. At half the window, as golang.org/x/net/http2 does: a sender
// uploading at full speed keeps half the window in hand, which on a loopback or a
// cluster network is many round trips, and each WINDOW_UPDATE is a wake-up of the
// sender and often a write of its own. At a quarter, a 3 MiB insert cost 76 writes of
// the relay and at half 66, for 0.97x its CPU per message (docs/benchmarks.md,
// "Inserts, fewer wake-ups").
func refreshDue(owed, win int64) bool { return owed >= win/2 }

// growLocked grows the backend's window for s from backendStreamWindow to
// streamWindow, once its client reads it, if its client connection's budget allows:
// the extra windows of one client connection's streams add up to at most
// clientConnBuffered (4 streams at full speed at a time; the others keep 64 KiB, which
// is plenty at the round-trip time to a backend in the same cluster). s.mu held.
func (s *stream) growLocked() {
	const extra = streamWindow - backendStreamWindow
	if s.down.grown {
		return
	}
	if s.cc.grown.Add(extra) > clientConnBuffered {
		s.cc.grown.Add(-extra)
		return
	}
	s.down.grown = true
	s.down.owed += extra
}

// clientConnBuffered bounds the response bytes the relay holds for one client
// connection's streams (beyond each stream's first backendStreamWindow): past it, no
// backend stream of that connection gets more window until the client reads. A
// backend stream starts with backendStreamWindow and grows to streamWindow once
// the client has been sent some of its data, so streams a client never reads cost
// backendStreamWindow each, and a client connection holds at most about
// clientConnBuffered + streams × backendStreamWindow + streamWindow.
const clientConnBuffered = 4 << 20

// deferLocked puts s on its client connection's list of streams whose backend window is
// held back. s.mu held.
func (s *stream) deferLocked() {
	if s.down.deferred {
		return
	}
	s.down.deferred = true
	s.pinned = true // the list outlives the call
	s.cc.mu.Lock()
	s.cc.deferred = append(s.cc.deferred, s)
	s.cc.mu.Unlock()
}

// grantDeferred returns the backend window held back from c's streams once c's queued
// bytes are below clientConnBuffered again. Called after what can drain c's queues.
func (c *h2conn) grantDeferred(b *batch) {
	c.mu.Lock()
	if len(c.deferred) == 0 || c.respQueued.Load() > clientConnBuffered {
		c.mu.Unlock()
		return
	}
	list := c.deferred
	c.deferred = nil
	c.mu.Unlock()
	for _, s := range list {
		s.grantWindow(b)
	}
}

// grantWindow sends the backend the stream window owed to it.
func (s *stream) grantWindow(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down.deferred = false
	if s.finished || s.backendEnded || s.bc == nil {
		return
	}
	s.growLocked()
	if s.down.owed <= 0 || !s.bc.lockWrite() {
		return
	}
	_ = s.bc.fr.WriteWindowUpdate(s.bid, uint32(s.down.owed))
	s.down.owed = 0
	s.bc.unlockWrite(b)
}

// adjustWindow opens s's stream window on c by delta and sends what waited. id is the
// stream's id on c when s was looked up by it (the call may be over and s used again,
// reuse.go); 0 when the caller holds s otherwise.
func (s *stream) adjustWindow(c *h2conn, id uint32, delta int64, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != 0 && !s.onLocked(c, id) || s.finished {
		return
	}
	if c == s.bc {
		s.up.win += delta
		if n := s.drainLocked(&s.up, s.bc, s.bid, b); n > 0 {
			s.ackLocked(s.cc, s.cid, &s.up, s.clientEnded, n, b)
		}
	}
	if c == s.cc {
		s.down.win += delta
		if n := s.drainLocked(&s.down, s.cc, s.cid, b); n > 0 {
			s.ackLocked(s.bc, s.bid, &s.down, s.backendEnded, n, b)
		}
	}
	s.maybeCompleteLocked(b)
}
