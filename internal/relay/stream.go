package relay

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// outFlow is one direction of a relayed stream, seen from the side it is sent to.
type outFlow struct {
	win      int64     // the destination stream's send window
	chunks   []*[]byte // data waiting for window (a copy: frame buffers are reused)
	poff     int       // read offset in chunks[0]
	qlen     int
	end      bool                 // END_STREAM follows pending
	trailers *[]hpack.HeaderField // from fieldsPool
	hasTrl   bool                 // trailers follow pending
	closed   bool                 // END_STREAM or RST_STREAM was sent: nothing more goes this way
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

// stream is one call: a stream on the client's connection and one on a backend's.
// All fields are guarded by mu (see the locking rules in conn.go).
type stream struct {
	mu   sync.Mutex
	sc   *clientConn
	call call.Call // the per-call decision: route, endpoint, failures, record

	cc  *h2conn // client side
	cid uint32
	bc  *h2conn // backend side, nil until the stream is open there
	bid uint32
	key poolKey

	up, down      outFlow // up: to the backend; down: to the client
	upScan        call.Scanner
	downScan      call.Scanner
	clientEnded   bool // the client sent END_STREAM
	backendEnded  bool // the backend sent END_STREAM or RST_STREAM
	respStarted   bool // response HEADERS went to the client
	connecting    bool
	finished      bool
	clientReset   bool
	reqFields     *[]hpack.HeaderField // from fieldsPool, until the request headers are sent
	uploading     bool                 // counted in bc.uploading (see noteUploadLocked)
	upReceived    int64                // request bytes received from the client
	timer         *time.Timer
	cancelDial    context.CancelFunc
	statusFromHdr string
}

// queueChunk is the unit of queued data; chunks are pooled, so a stream that waits for
// window costs no allocation and gives the memory back as soon as it catches up.
const queueChunk = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, queueChunk); return &b }}

// queuedLen is the number of bytes waiting to be sent.
func (o *outFlow) queuedLen() int { return o.qlen }

// head is the first contiguous piece of the queue.
func (o *outFlow) head() []byte {
	if len(o.chunks) == 0 {
		return nil
	}
	return (*o.chunks[0])[o.poff:]
}

func (o *outFlow) queue(p []byte) {
	o.qlen += len(p)
	if o.acct != nil {
		o.acct.Add(int64(len(p)))
	}
	for len(p) > 0 {
		if n := len(o.chunks); n == 0 || len(*o.chunks[n-1]) == cap(*o.chunks[n-1]) {
			c := chunkPool.Get().(*[]byte)
			*c = (*c)[:0]
			o.chunks = append(o.chunks, c)
		}
		last := o.chunks[len(o.chunks)-1]
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
	for len(o.chunks) > 0 && o.poff >= len(*o.chunks[0]) && (len(o.chunks) > 1 || o.qlen == 0) {
		o.poff -= len(*o.chunks[0])
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
	if dst == nil || o.queuedLen() > 0 || o.hasTrl {
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
	}
}

// drainLocked sends what o has pending, then its trailers or END_STREAM. It returns the
// bytes sent. s.mu held.
func (s *stream) drainLocked(o *outFlow, dst *h2conn, id uint32, b *batch) int64 {
	if dst == nil || o.closed || (o.queuedLen() == 0 && !o.end && !o.hasTrl) {
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
			putFields(o.trailers)
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
		s.growLocked()
		threshold := int64(streamWindow / 4)
		if !o.grown {
			threshold = backendStreamWindow / 4
		}
		if o.owed < threshold || !src.lockWrite() {
			return
		}
		_ = src.fr.WriteWindowUpdate(id, uint32(o.owed))
		o.owed = 0
		src.unlockWrite(b)
		return
	}
	if !src.lockWrite() {
		return
	}
	src.consumedLocked(n)
	if !srcEnded {
		o.owed += n
		if o.owed >= streamWindow/4 {
			_ = src.fr.WriteWindowUpdate(id, uint32(o.owed))
			o.owed = 0
		}
	}
	src.unlockWrite(b)
}

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
const clientConnBuffered = clientConnWindow

// deferLocked puts s on its client connection's list of streams whose backend window is
// held back. s.mu held.
func (s *stream) deferLocked() {
	if s.down.deferred {
		return
	}
	s.down.deferred = true
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

// adjustWindow opens o's stream window on c by delta and sends what waited.
func (s *stream) adjustWindow(c *h2conn, delta int64, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
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

// --- client side ---------------------------------------------------------------------

// fromClientData relays a DATA frame of the client.
func (s *stream) fromClientData(f *http2.DataFrame, b *batch) error {
	data := f.Data()
	pad := int64(f.Length) - int64(len(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clientEnded {
		s.cc.returnConnWindow(int64(f.Length), b)
		return http2.StreamError{StreamID: s.cid, Code: http2.ErrCodeStreamClosed}
	}
	if s.finished || s.up.closed {
		s.cc.returnConnWindow(int64(f.Length), b)
		return nil
	}
	end := f.StreamEnded()
	s.upReceived += int64(len(data))
	if end {
		s.clientEnded = true
		s.uploadDoneLocked()
	} else {
		s.noteUploadLocked()
	}
	if fl := s.call.Port().Limits.Request(&s.upScan, data); fl != nil {
		s.cc.returnConnWindow(int64(f.Length), b)
		s.failLocked(fl, b)
		return nil
	}
	sent := s.sendLocked(&s.up, s.bc, s.bid, data, end, b)
	s.ackLocked(s.cc, s.cid, &s.up, s.clientEnded, sent+pad, b)
	return nil
}

// fromClientTrailers is the client's END_STREAM on a HEADERS frame (trailers, which gRPC
// clients do not send, are dropped: the backend only needs the end).
func (s *stream) fromClientTrailers(f *headerBlock, b *batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clientEnded {
		return http2.StreamError{StreamID: s.cid, Code: http2.ErrCodeStreamClosed}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		// Trailers must end the stream and carry no pseudo-header (RFC 9113 §8.1).
		return http2.StreamError{StreamID: s.cid, Code: http2.ErrCodeProtocol}
	}
	if s.finished {
		return nil
	}
	s.clientEnded = true
	s.uploadDoneLocked()
	s.sendLocked(&s.up, s.bc, s.bid, nil, true, b)
	return nil
}

// fromClientWindow opens (or shrinks) the stream's window toward the client by delta
// and sends what waited for it.
func (s *stream) fromClientWindow(delta int64, b *batch) error {
	s.mu.Lock()
	over := !s.finished && s.down.win+delta > maxWindow
	s.mu.Unlock()
	if over {
		return http2.StreamError{StreamID: s.cid, Code: http2.ErrCodeFlowControl}
	}
	s.adjustWindow(s.cc, delta, b)
	s.cc.grantDeferred(b)
	return nil
}

// fromClientReset is the client's RST_STREAM: the call is cancelled.
func (s *stream) fromClientReset(b *batch) {
	s.mu.Lock()
	if !s.finished {
		s.clientReset = true
		s.down.closed = true
		s.resetBackendLocked(http2.ErrCodeCancel, b)
		s.call.Rec.Code = codes.Canceled
		s.finishLocked(b)
	}
	s.mu.Unlock()
	// Its queue no longer counts against the connection: streams held back may go on
	// (after s.mu: granting takes their locks).
	s.cc.grantDeferred(b)
}

// clientGone ends the stream when the client's connection closed.
func (s *stream) clientGone(b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.down.closed = true
	s.resetBackendLocked(http2.ErrCodeCancel, b)
	s.call.Rec.Code = codes.Canceled
	s.finishLocked(b)
}

// --- backend side --------------------------------------------------------------------

// connectLocked picks an endpoint and opens the backend stream, at once on a pooled
// connection or, when one must be dialed, from a goroutine. s.mu held.
func (s *stream) connectLocked(b *batch) {
	ep, f := s.call.Pick()
	if f != nil {
		s.failLocked(f, b)
		return
	}
	s.key = poolKey{addr: ep.Addr, tls: s.call.Backend().TLS}
	if bc := s.sc.sv.Pool.ready(s.key); bc != nil && s.openLocked(bc, b) {
		return
	}
	s.connecting = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancelDial = cancel
	go s.dial(ctx)
}

func (s *stream) dial(ctx context.Context) {
	var b batch
	defer b.flush()
	bc, err := s.sc.sv.Pool.get(ctx, s.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelDial = nil
	if s.finished {
		return
	}
	if err == nil && s.openLocked(bc, &b) {
		return
	}
	if err == nil {
		// The connection went away between dial and use: dial again.
		ctx, cancel := context.WithCancel(context.Background())
		s.cancelDial = cancel
		go s.dial(ctx)
		return
	}
	// Nothing of the call was sent: it can always go to another endpoint.
	if retry, f := s.call.Failed(ctx, err, true); !retry {
		s.failLocked(f, &b)
		return
	}
	s.connectLocked(&b)
}

// openLocked opens the stream on bc and sends the headers and what the client sent so
// far. It reports false if bc can take no new stream. s.mu held.
func (s *stream) openLocked(bc *h2conn, b *batch) bool {
	if !bc.lockWrite() {
		return false
	}
	if bc.goAway || bc.nextID >= 1<<31-1 {
		bc.goAway = true
		bc.mu.Unlock()
		return false
	}
	id := bc.nextID
	bc.nextID += 2
	bc.streams[id] = s
	s.bc, s.bid = bc, id
	s.noteUploadLocked()
	s.connecting = false
	s.up.win = int64(bc.peerWin)
	endNow := s.clientEnded && s.up.queuedLen() == 0
	bc.writeHeaders(id, endNow, *s.reqFields)
	putFields(s.reqFields)
	s.reqFields = nil
	if endNow {
		s.up.closed, s.up.end = true, false
	}
	bc.unlockWrite(b)
	if n := s.drainLocked(&s.up, bc, id, b); n > 0 {
		s.ackLocked(s.cc, s.cid, &s.up, s.clientEnded, n, b)
	}
	return true
}

// fromBackendHeaders relays response headers or trailers.
func (s *stream) fromBackendHeaders(f *headerBlock, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.down.closed {
		return
	}
	end := f.StreamEnded()
	fp := getFields()
	defer func() { putFields(fp) }()
	fields := *fp
	if !s.respStarted {
		st := f.PseudoValue("status")
		if len(st) == 3 && st[0] == '1' {
			return // 1xx: nothing for a gRPC client
		}
		fields = append(fields, hpack.HeaderField{Name: ":status", Value: st})
	}
	for _, hf := range f.RegularFields() {
		if !call.Downstream(hf.Name) {
			continue
		}
		if hf.Name == "grpc-status" {
			s.statusFromHdr = hf.Value
		}
		fields = append(fields, hpack.HeaderField{Name: hf.Name, Value: hf.Value, Sensitive: hf.Sensitive})
	}
	*fp = fields
	if end {
		// The call is over for the backend: nothing more of the request is wanted.
		s.backendEnded = true
		s.up.closed = true
		s.up.reset()
	}
	if !s.respStarted {
		s.respStarted = true
		if s.cc.lockWrite() {
			s.cc.writeHeaders(s.cid, end, fields)
			s.cc.unlockWrite(b)
		}
		if end {
			s.down.closed = true
		}
	} else if end {
		if s.down.queuedLen() > 0 {
			s.down.trailers, s.down.hasTrl = fp, true
			fp = nil // drainLocked sends and returns them
		} else {
			if s.cc.lockWrite() {
				s.cc.writeHeaders(s.cid, true, fields)
				s.cc.unlockWrite(b)
			}
			s.down.closed = true
		}
	}
	s.maybeCompleteLocked(b)
}

// fromBackendData relays response data.
func (s *stream) fromBackendData(f *http2.DataFrame, b *batch) {
	data := f.Data()
	pad := int64(f.Length) - int64(len(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.down.closed || !s.respStarted {
		s.bc.returnConnWindow(int64(f.Length), b)
		return
	}
	if fl := s.call.Port().Limits.Response(&s.downScan, data); fl != nil {
		s.bc.returnConnWindow(int64(f.Length), b)
		s.failLocked(fl, b)
		return
	}
	end := f.StreamEnded()
	if end {
		s.backendEnded = true
	}
	// The backend connection's window comes back at once (see ackLocked).
	s.bc.returnConnWindow(int64(f.Length), b)
	sent := s.sendLocked(&s.down, s.cc, s.cid, data, end, b)
	s.ackLocked(s.bc, s.bid, &s.down, s.backendEnded, sent+pad, b)
	s.maybeCompleteLocked(b)
}

// backendReset is the backend's RST_STREAM.
func (s *stream) backendReset(code http2.ErrCode, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.backendEnded = true
	s.up.closed = true
	if !s.respStarted || code == http2.ErrCodeRefusedStream {
		s.failLocked(call.BackendReset(s.call.Service(), code.String()), b)
		return
	}
	if !s.down.closed {
		s.down.closed = true
		if s.cc.lockWrite() {
			_ = s.cc.fr.WriteRSTStream(s.cid, code)
			s.cc.unlockWrite(b)
		}
	}
	s.call.Rec.Code = codes.Unavailable
	s.finishLocked(b)
}

// backendGone fails the stream when its backend connection (c) ended.
func (s *stream) backendGone(c *h2conn, err error) {
	var b batch
	defer b.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.bc != c {
		return
	}
	s.backendEnded = true
	s.up.closed = true
	s.failLocked(call.BackendGone(s.call.Service(), err), &b)
}

// resetBackendLocked cancels the backend stream unless it has ended. s.mu held.
func (s *stream) resetBackendLocked(code http2.ErrCode, b *batch) {
	if s.cancelDial != nil {
		s.cancelDial()
		s.cancelDial = nil
	}
	if s.bc == nil || s.backendEnded {
		return
	}
	s.backendEnded = true
	s.up.closed = true
	if s.bc.lockWrite() {
		_ = s.bc.fr.WriteRSTStream(s.bid, code)
		s.bc.unlockWrite(b)
	}
}

// failLocked answers the client with f's gRPC status (Trailers-Only when nothing was
// sent yet, else trailers after what was) and cancels the backend stream. s.mu held.
func (s *stream) failLocked(f *call.Failure, b *batch) {
	if s.finished {
		return
	}
	s.resetBackendLocked(http2.ErrCodeCancel, b)
	if !s.down.closed {
		s.down.reset()
		putFields(s.down.trailers)
		s.down.hasTrl, s.down.trailers, s.down.end = false, nil, false
		fields := make([]hpack.HeaderField, 0, 4)
		if !s.respStarted {
			fields = append(fields, hpack.HeaderField{Name: ":status", Value: "200"}, hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
		}
		fields = append(fields,
			hpack.HeaderField{Name: "grpc-status", Value: f.GRPCStatus()},
			hpack.HeaderField{Name: "grpc-message", Value: f.GRPCMessage()})
		if s.cc.lockWrite() {
			s.cc.writeHeaders(s.cid, true, fields)
			s.cc.unlockWrite(b)
		}
		s.respStarted = true
		s.down.closed = true
	}
	s.call.Answer(f)
	s.finishLocked(b)
}

// maybeCompleteLocked finishes the stream once the response has ended toward the client.
func (s *stream) maybeCompleteLocked(b *batch) {
	if s.finished || !s.down.closed {
		return
	}
	if !s.backendEnded {
		// The response ended with the backend stream still open on our side: cancel it.
		s.resetBackendLocked(http2.ErrCodeCancel, b)
	}
	s.finishLocked(b)
}

// finishLocked releases the stream: tables, endpoint count, timer, metrics. s.mu held.
func (s *stream) finishLocked(b *batch) {
	if s.finished {
		return
	}
	s.finished = true
	s.uploadDoneLocked()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.cancelDial != nil {
		s.cancelDial()
		s.cancelDial = nil
	}
	queued := s.down.qlen > 0
	if s.down.grown {
		s.cc.grown.Add(-(streamWindow - backendStreamWindow))
	}
	s.up.reset()
	s.down.reset()
	s.up, s.down = outFlow{closed: true}, outFlow{closed: true}
	if queued {
		// Its queue no longer counts against the client connection: streams held back
		// for it may go on. On a goroutine: s.mu is held and they have locks of their own.
		cc := s.cc
		cc.mu.Lock()
		waiting := len(cc.deferred) > 0
		cc.mu.Unlock()
		if waiting {
			go func() {
				var b batch
				cc.grantDeferred(&b)
				b.flush()
			}()
		}
	}
	if s.bc != nil {
		s.bc.mu.Lock()
		if s.bc.streams[s.bid] == s {
			delete(s.bc.streams, s.bid)
		}
		s.bc.mu.Unlock()
	}
	now := time.Now()
	s.call.Finish(now, s.statusFromHdr)
	early := s.clientReset && now.Sub(s.call.Rec.Start) < prematureResetLifetime
	s.sc.remove(s.cid, s, early, b)
}

// uploadThreshold: a request still coming after this many bytes is an upload (an insert
// of megabytes), which Pool.ready keeps off the connections other uploads use. A
// search (a few KiB, sent whole at once) never is one.
const uploadThreshold = 64 << 10

// noteUploadLocked counts s in its backend connection's uploads once its request is
// one. s.mu held.
func (s *stream) noteUploadLocked() {
	if !s.uploading && s.bc != nil && !s.clientEnded && s.upReceived >= uploadThreshold {
		s.uploading = true
		s.bc.uploading.Add(1)
	}
}

// uploadDoneLocked ends the stream's count in its backend connection's uploads. s.mu held.
func (s *stream) uploadDoneLocked() {
	if s.uploading {
		s.uploading = false
		s.bc.uploading.Add(-1)
	}
}

// prematureResetLifetime: a stream the client resets sooner than this after opening it
// counts toward the rapid-reset guard (the listener's rule, see listener/limits.go).
const prematureResetLifetime = time.Second

// isGRPCContentType reports whether a content-type is gRPC's.
func isGRPCContentType(ct string) bool {
	return strings.HasPrefix(ct, "application/grpc")
}
