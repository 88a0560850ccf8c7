package relay

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
	"github.com/milvus-lb/milvus-lb/internal/call"
)

// stream is one call: a stream on the client's connection and one on a backend's.
// All fields are guarded by mu (see the locking rules in conn.go). A finished stream is
// used again by a later call of its client connection (reuse.go): mu stays, the state is
// reset.
type stream struct {
	mu sync.Mutex
	// timer expires the call at its grpc-timeout (expire); made by the first call of
	// the stream that has one, and kept for its next calls (a stopped timer is armed
	// again). Guarded by mu; timed says whether it is armed for this call.
	timer *time.Timer
	// call is the per-call decision: route, endpoint, failures, record. Reset for each
	// call by its Begin, which keeps its scanners from one call to the next.
	call call.Call
	// reqList is the list reqFields uses; replyList the one of a held reply's headers
	// (replyHold) or of trailers queued behind the reply's data (down.trailers), never
	// both at once: held headers are sent before trailers are read. Both are kept from
	// one call to the next, and go back to fieldsPool, with the call's scanners to
	// theirs, when the stream is dropped (release).
	reqList, replyList *[]hpack.HeaderField
	streamState
}

// streamState is a stream's state, reset as a whole when the stream is used again.
type streamState struct {
	sc *clientConn

	cc  *h2conn // client side
	cid uint32
	bc  *h2conn // backend side, nil until the stream is open there
	bid uint32
	key poolKey

	up, down outFlow // up: to the backend; down: to the client
	readReq  bool    // the call still reads the request's first message (call.Request)
	// holding: the decision waits for the first message (hold.go); held: the request
	// bytes held for it, counted in the client connection's.
	holding   bool
	held      int64
	mirrored  bool // the copy for call.Mirror was handed over (or dropped)
	readReply bool // the call still reads the reply's first message (call.Response)
	// keep: replay holds every request byte received so far, for another attempt (up to
	// the retry buffer size (call.ReplayLimit), until the reply begins); reacked: the bytes at the head of up's
	// queue that were acknowledged to the client already (sent to a failed attempt).
	keep          bool
	replay        []byte
	reacked       int64
	upScan        call.Scanner
	downScan      call.Scanner
	clientEnded   bool // the client sent END_STREAM
	backendEnded  bool // the backend sent END_STREAM or RST_STREAM
	respStarted   bool // response HEADERS went to the client
	connecting    bool
	finished      bool
	clientReset   bool
	reqFields     *[]hpack.HeaderField // reqList, until the request headers are sent
	uploading     bool                 // counted in bc.uploading (see noteUploadLocked)
	upReceived    int64                // request bytes received from the client
	downReceived  int64                // reply bytes relayed from the backend
	timed         bool                 // timer is armed for this call
	cancelDial    context.CancelFunc
	statusFromHdr string
	cache         cacheState // the reply cache (cache.go)
	// replyHold: the reply's headers, held until its Milvus Status is read (replyhold.go);
	// nil when the reply is not held.
	replyHold *[]hpack.HeaderField
	// pinned: a pointer to the stream went where a call after this one could still
	// reach it (reuse.go): the stream is not used again.
	pinned bool
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
	if s.readReq && !s.holding {
		s.readReq = s.call.Request(data)
	}
	if s.keep {
		s.keepLocked(data)
	}
	if end {
		s.mirrorLocked() // before the reply can begin and end what is kept
	}
	sent := s.sendLocked(&s.up, s.bc, s.bid, data, end, b)
	s.ackLocked(s.cc, s.cid, &s.up, s.clientEnded, sent+pad, b)
	if s.holding {
		s.holdLocked(data, b) // after queueing: a decision made now sends what is queued
	} else if s.cache.waiting {
		s.connectLocked(b) // the cache may look the request up now
	}
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
	if !trailersOK(f) {
		return http2.StreamError{StreamID: s.cid, Code: http2.ErrCodeProtocol}
	}
	if s.finished {
		return nil
	}
	s.clientEnded = true
	s.uploadDoneLocked()
	s.mirrorLocked()
	s.sendLocked(&s.up, s.bc, s.bid, nil, true, b)
	if s.holding {
		s.holdLocked(nil, b)
	} else if s.cache.waiting {
		s.connectLocked(b)
	}
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
	s.adjustWindow(s.cc, 0, delta, b)
	s.cc.grantDeferred(b)
	return nil
}

// fromClientReset is the client's RST_STREAM: the call is cancelled.
func (s *stream) fromClientReset(b *batch) {
	s.mu.Lock()
	if !s.finished {
		s.call.Cancelled(time.Now(), s.respStarted || s.replyHold != nil)
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
	if s.cacheLocked(b) {
		return // held for the cache, or answered by it
	}
	s.mirrorLocked() // a miss, or not one for the cache: the primary is asked, and so the mirror
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
	s.pinned = true // the dial goroutine holds it
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
	// Nothing of the call was sent (the queue holds all of it): it can always go to
	// another endpoint.
	s.failOrRetryLocked(call.NotSent, err, &b)
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
	bc.track(id, s)
	s.bc, s.bid = bc, id
	s.noteUploadLocked()
	s.connecting = false
	s.up.win = int64(bc.peerWin)
	endNow := s.clientEnded && s.up.queuedLen() == 0
	bc.writeHeaders(id, endNow, *s.reqFields)
	if !s.keep {
		s.releaseReplayLocked()
	}
	if endNow {
		s.up.closed, s.up.end = true, false
	}
	bc.unlockWrite(b)
	if n := s.drainLocked(&s.up, bc, id, b); n > 0 {
		s.ackLocked(s.cc, s.cid, &s.up, s.clientEnded, n, b)
	}
	return true
}

// fromBackendHeaders relays response headers or trailers that came on c.
func (s *stream) fromBackendHeaders(c *h2conn, f *headerBlock, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.onLocked(c, f.StreamID) || s.finished || s.down.closed {
		return
	}
	end := f.StreamEnded()
	if s.replyHold != nil {
		// Trailers before the Status was read. With no reply message, a backend that did
		// not serve the call: a read may go elsewhere. Otherwise send on what came.
		if end && s.downReceived == 0 && call.NotServed(grpcStatus(f)) {
			if retried, _ := s.retryLocked(call.BeforeReply, call.BackendUnavailable(s.call.Service()), b); retried {
				return
			}
		}
		s.sendHeldLocked(b)
	}
	// The list is on the stack until it is encoded; one kept longer is copied (keepReply).
	var list [8]hpack.HeaderField
	fields, ok := s.downstreamLocked(list[:0], f)
	if !ok {
		return // 1xx: nothing for a gRPC client
	}
	if !s.respStarted && !end && s.holdReplyLocked(fields) {
		return // held until the Status is read
	}
	if !s.respStarted && end && call.NotServed(s.statusFromHdr) {
		// A backend that did not serve the call (call.NotServed): a read may go
		// elsewhere; otherwise the client gets the backend's own answer.
		if retried, _ := s.retryLocked(call.BeforeReply, call.BackendUnavailable(s.call.Service()), b); retried {
			return
		}
	}
	s.releaseReplayLocked()
	if end {
		// The call is over for the backend: nothing more of the request is wanted.
		s.backendEnded = true
		s.up.closed = true
		s.dropUpLocked(b)
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
			s.down.trailers, s.down.hasTrl = s.keepReply(fields), true // drainLocked sends and clears them
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

// downstreamLocked appends to dst the fields of the backend's header block f that go to
// the client: :status on the reply's first block, then what call.Downstream lets
// through. It notes the grpc-status, and reports false for a 1xx reply, which a gRPC
// client is not sent. s.mu held.
func (s *stream) downstreamLocked(dst []hpack.HeaderField, f *headerBlock) ([]hpack.HeaderField, bool) {
	if !s.respStarted {
		st := f.Pseudo(pStatus)
		if len(st) == 3 && st[0] == '1' {
			return dst, false
		}
		dst = append(dst, hpack.HeaderField{Name: ":status", Value: st})
	}
	for _, hf := range f.RegularFields() {
		if !call.Downstream(hf.Name) {
			continue
		}
		if hf.Name == "grpc-status" {
			s.statusFromHdr = hf.Value
		}
		dst = append(dst, hpack.HeaderField{Name: hf.Name, Value: hf.Value, Sensitive: hf.Sensitive})
	}
	return dst, true
}

// fromBackendData relays response data that came on c.
func (s *stream) fromBackendData(c *h2conn, f *http2.DataFrame, b *batch) {
	data := f.Data()
	pad := int64(f.Length) - int64(len(data))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.onLocked(c, f.StreamID) || s.finished || s.down.closed || (!s.respStarted && s.replyHold == nil) {
		c.returnConnWindow(int64(f.Length), b)
		return
	}
	if fl := s.call.Port().Limits.Response(&s.downScan, data); fl != nil {
		s.bc.returnConnWindow(int64(f.Length), b)
		s.failLocked(fl, b)
		return
	}
	if s.readReply {
		s.readReply = s.call.Response(data)
	}
	if s.replyHold != nil {
		if bc := s.bc; s.heldDataLocked(len(data), f.StreamEnded(), b) {
			bc.returnConnWindow(int64(f.Length), b) // the attempt was left for another
			return
		}
	}
	if s.cache.keep > 0 {
		s.keepReplyLocked(data)
	}
	s.downReceived += int64(len(data))
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

// backendReset is the backend's RST_STREAM for stream id of c.
func (s *stream) backendReset(c *h2conn, id uint32, code http2.ErrCode, b *batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.onLocked(c, id) || s.finished {
		return
	}
	s.backendEnded = true
	s.up.closed = true
	if !s.respStarted || code == http2.ErrCodeRefusedStream {
		stage := call.BeforeReply
		if code == http2.ErrCodeRefusedStream {
			stage = call.NotSent // RFC 9113 §8.7: refused streams were not processed
		}
		s.failOrRetryLocked(stage, call.BackendReset(s.call.Service(), code.String()), b)
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

// backendGone fails the stream when its backend connection (c) ended, or when c's
// GOAWAY said the stream was never processed; stage NotSent says the backend never read
// it.
func (s *stream) backendGone(c *h2conn, err error, stage call.Stage) {
	var b batch
	defer b.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.bc != c {
		return
	}
	s.backendEnded = true
	s.up.closed = true
	s.failOrRetryLocked(stage, call.BackendGone(s.call.Service(), err), &b)
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
		clearFields(s.down.trailers)
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
	s.dropReplyLocked()
	s.releaseHeldLocked()
	s.releaseReplayLocked()
	s.releaseFieldsLocked()
	s.uploadDoneLocked()
	if s.timed && !s.timer.Stop() {
		s.pinned = true // expire runs, or is about to
	}
	if s.cancelDial != nil {
		s.cancelDial()
		s.cancelDial = nil
	}
	queued := s.down.qlen > 0
	if s.down.grown {
		s.cc.grown.Add(-(streamWindow - backendStreamWindow))
	}
	s.dropUpLocked(b)
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
		s.bc.forget(s.bid, s)
	}
	s.storeReplyLocked()
	// From the start's monotonic reading: the monotonic clock alone, not the wall clock too.
	now := s.call.Rec.Start.Add(time.Since(s.call.Rec.Start))
	s.call.Moved(s.upReceived, s.downReceived)
	s.call.Finish(now, s.statusFromHdr)
	early := s.clientReset && now.Sub(s.call.Rec.Start) < prematureResetLifetime
	reuse := s
	if s.pinned {
		reuse = nil
	}
	s.sc.remove(s.cid, s, reuse, early, b)
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

// grpcStatus is the grpc-status field of header block f, "" when it has none.
func grpcStatus(f *headerBlock) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == "grpc-status" {
			return hf.Value
		}
	}
	return ""
}

// Bounds on the request bytes kept for replays, so that keeping them is no way to make
// the balancer hold memory: 4 MiB per client connection; in all, 64 MiB. Past them
// calls are kept no more (they are still retried when nothing of them was sent).
// Searches, a few KiB each, stay well inside.
const (
	replayPerConn = 4 << 20
	replayTotal   = 64 << 20
)

// replayHeld counts the bytes kept for replays by every stream.
var replayHeld atomic.Int64

// replayBufs hold the requests kept for replays: a Search (a few KiB) takes one, so keeping
// it costs no allocation, and no garbage to collect, per call.
var replayBufs = bufs.New(256, 16<<10)

// keepLocked adds request bytes p to what is kept for another attempt, or stops keeping
// when the request is larger than the retry buffer size (call.ReplayLimit: known from its
// first length prefix, so that a large insert is not copied at all) or the bounds above
// are reached. While the decision waits, the backend and so its limit are not known yet:
// what is held is kept, and checked once it is (keptLocked). s.mu held.
func (s *stream) keepLocked(p []byte) {
	n := int64(len(p))
	limit := int64(math.MaxInt64 - call.PrefixLen)
	if !s.holding {
		limit = s.call.ReplayLimit()
	}
	if s.replay == nil && len(p) >= call.PrefixLen {
		size := int64(binary.BigEndian.Uint32(p[1:call.PrefixLen])) + call.PrefixLen
		if size > limit+call.PrefixLen {
			s.releaseReplayLocked()
			return
		}
		if size <= int64(replayBufs.Size) {
			s.replay = replayBufs.Get()
		} else {
			s.replay = make([]byte, 0, min(size, call.HoldLimit+defaultFrame))
		}
	}
	if int64(len(s.replay))+n > limit+call.PrefixLen || s.sc.replayHeld.Add(n) > replayPerConn {
		s.sc.replayHeld.Add(-n)
		s.releaseReplayLocked()
		return
	}
	if replayHeld.Add(n) > replayTotal {
		replayHeld.Add(-n)
		s.sc.replayHeld.Add(-n)
		s.releaseReplayLocked()
		return
	}
	s.replay = append(s.replay, p...)
}

// keptLocked checks what was kept while the decision waited against the retry buffer
// size of the backend chosen. s.mu held.
func (s *stream) keptLocked() {
	if !s.keep || len(s.replay) < call.PrefixLen {
		return
	}
	limit := s.call.ReplayLimit() + call.PrefixLen
	if int64(binary.BigEndian.Uint32(s.replay[1:call.PrefixLen]))+call.PrefixLen > limit || int64(len(s.replay)) > limit {
		s.releaseReplayLocked()
	}
}

// releaseReplayLocked lets go of what was kept for another attempt: the reply began, or
// the call cannot be sent again. s.mu held.
func (s *stream) releaseReplayLocked() {
	if n := int64(len(s.replay)); n > 0 {
		replayHeld.Add(-n)
		s.sc.replayHeld.Add(-n)
	}
	if cap(s.replay) == replayBufs.Size {
		replayBufs.Put(s.replay[:0])
	}
	s.keep, s.replay = false, nil
	if s.bc != nil {
		s.releaseFieldsLocked() // sent, and not to be sent again
	}
}

// releaseFieldsLocked lets go of the request's header fields: cleared, the list stays
// for the stream's next call. s.mu held.
func (s *stream) releaseFieldsLocked() {
	clearFields(s.reqFields)
	s.reqFields = nil
}

// failOrRetryLocked ends an attempt that failed at stage with err: the call goes to
// another endpoint when the per-call decision allows it, else the client gets the
// failure. s.mu held.
func (s *stream) failOrRetryLocked(stage call.Stage, err error, b *batch) {
	if retried, f := s.retryLocked(stage, err, b); !retried && f != nil {
		s.failLocked(f, b)
	}
}

// retryLocked sends the call to another endpoint after its attempt failed at stage with
// err, when the per-call decision allows it and the whole request so far is kept. It
// reports whether it did, else the failure the client is to get (nil when the call is
// already over). s.mu held.
func (s *stream) retryLocked(stage call.Stage, err error, b *batch) (bool, *call.Failure) {
	if s.finished {
		return false, nil
	}
	if s.respStarted {
		stage = call.AfterReply
	}
	opened := s.bc != nil // else nothing was sent: the queue holds the whole request
	if retry, f := s.call.Failed(context.Background(), err, stage, s.replayableLocked()); !retry {
		return false, f
	}
	if opened {
		s.dropReplyLocked()
		unsent := int64(s.up.queuedLen())
		s.detachLocked(b)
		s.up.reset()
		s.up = outFlow{end: s.clientEnded}
		s.up.queue(s.replay)
		// Acknowledged: what was sent, and what was not but had been (an earlier retry's).
		s.reacked += int64(len(s.replay)) - unsent
		s.backendEnded = false
	}
	s.connectLocked(b)
	return true, nil
}

// detachLocked leaves the failed attempt's backend stream: out of its connection's
// table and upload count, cancelled if it is still open. s.mu held.
func (s *stream) detachLocked(b *batch) {
	s.resetBackendLocked(http2.ErrCodeCancel, b)
	s.uploadDoneLocked()
	if bc := s.bc; bc != nil {
		bc.forget(s.bid, s)
	}
	s.bc, s.bid = nil, 0
}
