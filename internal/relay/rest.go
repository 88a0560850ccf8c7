package relay

// Requests that are not gRPC calls (Milvus's REST API, redirects, anything curl sends over
// h2) reach the relay too: a client negotiates h2 by ALPN whatever it means to send. They
// are served by Server.REST (internal/rest), the one place that knows REST (routing, HTTP/1.1 to the
// backend, errors as HTTP statuses): the stream is adapted into an *http.Request whose
// body is fed by the client's DATA frames and an http.ResponseWriter that writes HEADERS,
// DATA and trailers on the stream. Each such request runs on a goroutine of its own, as
// under net/http; gRPC calls keep the frame-by-frame path.
//
// Flow control is end to end: the client's window is returned only as the handler reads
// the body (so at most one stream window, 1 MiB, waits per request), and a response write
// blocks until the client's windows have room (nothing is queued for a slow client).
//
// REST streams live in the client connection's one table of streams (streams.go). Each
// restStream has its own mu; as everywhere in the relay, a stream's mu may be held while
// taking the connection's, never the other way round.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// maxRESTBodyBuffered bounds the request bytes a REST stream holds before its handler
// reads them; it is the stream window the relay advertises, so a conforming client never
// reaches it and one that does has broken flow control.
const maxRESTBodyBuffered = streamWindow

var (
	errStreamReset  = errors.New("http2: client reset the stream")
	errStreamClosed = errors.New("http2: stream closed")
)

type restStream struct {
	sc    *clientConn
	id    uint32
	start time.Time

	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request

	mu   sync.Mutex
	cond sync.Cond // on mu: body data, window, or the end of the stream

	// request side
	body      []byte // received, not yet read by the handler
	bodyEnd   bool   // the client sent END_STREAM
	clLeft    int64  // content-length bytes still expected; -1 without content-length
	recvWin   int64  // what the client may still send on the stream
	owed      int64  // bytes read by the handler, not yet returned by WINDOW_UPDATE
	trailerIn http.Header
	bodyDone  bool // the handler closed the body: it reads no more

	// response side
	sendWin     int64 // the stream's send window
	hdr         http.Header
	status      int
	wroteHeader bool // WriteHeader was called
	sentHeader  bool // response HEADERS went out
	noBody      bool // HEAD, 204 or 304: written bytes are dropped
	ended       bool // END_STREAM went out
	dead        error
}

// startREST opens a REST stream for a request that passed checkRequest. The client
// connection's stream count was checked by the caller.
func (s *clientConn) startREST(f *headerBlock, cl int64, b *batch) {
	r := &restStream{sc: s, id: f.StreamID, start: time.Now(), clLeft: cl, recvWin: streamWindow, hdr: http.Header{}}
	r.cond.L = &r.mu
	req, err := r.newRequest(f, cl)
	if err != nil {
		s.resetStream(f.StreamID, http2.ErrCodeProtocol, b)
		return
	}
	r.req = req
	r.bodyEnd = f.StreamEnded()
	r.noBody = req.Method == http.MethodHead

	if !s.add(r.id, r, func(peerWin int64) { r.sendWin = peerWin }) {
		r.cancel()
		return
	}
	go r.serve()
}

// newRequest builds the request the handler sees, as net/http's HTTP/2 server would.
func (r *restStream) newRequest(f *headerBlock, cl int64) (*http.Request, error) {
	s := r.sc
	method, path, authority := f.Pseudo(pMethod), f.Pseudo(pPath), f.Pseudo(pAuthority)
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("bad :path %q: %w", path, err)
	}
	h := make(http.Header, len(f.Fields))
	var cookies []string
	for _, hf := range f.RegularFields() {
		if hf.Name == "cookie" {
			// RFC 9113 §8.2.3: cookie crumbs are rejoined for HTTP/1.1 semantics.
			cookies = append(cookies, hf.Value)
			continue
		}
		h.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	if authority == "" {
		authority = h.Get("Host")
	}
	h.Del("Host")
	var trailer http.Header
	for _, v := range h.Values("Trailer") {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				if trailer == nil {
					trailer = http.Header{}
				}
				trailer[k] = nil
			}
		}
	}
	h.Del("Trailer")
	r.ctx, r.cancel = context.WithCancel(context.Background())
	req := &http.Request{
		Method: method, URL: u, RequestURI: path,
		Proto: "HTTP/2.0", ProtoMajor: 2, ProtoMinor: 0,
		Header: h, Trailer: trailer, Host: authority,
		RemoteAddr: s.c.nc.RemoteAddr().String(), TLS: s.connectionState(),
		ContentLength: cl,
	}
	switch {
	case f.StreamEnded():
		req.Body, req.ContentLength = http.NoBody, 0
	default:
		req.Body = restBody{r}
	}
	return req.WithContext(r.ctx), nil
}

// serve runs the handler and ends the stream.
func (r *restStream) serve() {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				r.sc.sv.Port.Log.Error("panic serving an HTTP/2 request", "path", r.req.URL.Path, "panic", fmt.Sprint(p))
			}
			r.abort(http2.ErrCodeInternal)
			return
		}
		r.finish()
	}()
	r.sc.sv.REST.ServeHTTP(r, r.req)
}

// --- frames from the client (the connection's reader goroutine) ----------------------

// fromClientData takes a DATA frame; a non-nil error is a stream or connection error.
func (r *restStream) fromClientData(f *http2.DataFrame, b *batch) error {
	c := r.sc.c
	n := int64(f.Length)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bodyEnd {
		c.returnConnWindow(n, b)
		return http2.StreamError{StreamID: r.id, Code: http2.ErrCodeStreamClosed}
	}
	if n > r.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	r.recvWin -= n
	p := f.Data()
	if pad := n - int64(len(p)); pad > 0 {
		r.returnLocked(pad, b)
	}
	if r.dead != nil || r.bodyDone {
		// Nothing reads the body any more, so the bytes are given back.
		c.returnConnWindow(int64(len(p)), b)
	} else {
		r.body = append(r.body, p...)
	}
	if r.clLeft >= 0 {
		r.clLeft -= int64(len(p))
		if r.clLeft < 0 || (f.StreamEnded() && r.clLeft != 0) {
			return http2.StreamError{StreamID: r.id, Code: http2.ErrCodeProtocol}
		}
	}
	if f.StreamEnded() {
		r.bodyEnd = true
	}
	r.cond.Broadcast()
	return nil
}

// fromClientTrailers takes the request's trailers (a HEADERS frame after the first).
func (r *restStream) fromClientTrailers(f *headerBlock, _ *batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bodyEnd {
		return http2.StreamError{StreamID: r.id, Code: http2.ErrCodeStreamClosed}
	}
	if !trailersOK(f) || r.clLeft > 0 {
		return http2.StreamError{StreamID: r.id, Code: http2.ErrCodeProtocol}
	}
	for _, hf := range f.RegularFields() {
		if r.trailerIn == nil {
			r.trailerIn = http.Header{}
		}
		r.trailerIn.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
	}
	r.bodyEnd = true
	r.cond.Broadcast()
	return nil
}

// fromClientWindow opens the stream's send window by delta (a WINDOW_UPDATE, or a change
// of SETTINGS_INITIAL_WINDOW_SIZE).
func (r *restStream) fromClientWindow(delta int64, _ *batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sendWin+delta > maxWindow {
		return http2.StreamError{StreamID: r.id, Code: http2.ErrCodeFlowControl}
	}
	r.sendWin += delta
	r.cond.Broadcast()
	return nil
}

// fromClientReset ends the stream: the client reset it.
func (r *restStream) fromClientReset(*batch) { r.reset(errStreamReset) }

// clientGone ends the stream when its connection closed.
func (r *restStream) clientGone(*batch) { r.reset(errStreamClosed) }

// wake lets a writer waiting for connection window try again.
func (r *restStream) wake() {
	r.mu.Lock()
	r.cond.Broadcast()
	r.mu.Unlock()
}

// reset ends the stream from the client's side (RST_STREAM, a stream error we sent, or
// the connection's end): the handler's context is cancelled and its reads and writes fail.
func (r *restStream) reset(err error) {
	var b batch
	r.mu.Lock()
	if r.dead == nil {
		r.dead = err
	}
	r.dropBodyLocked(&b)
	r.cond.Broadcast()
	r.mu.Unlock()
	b.flush()
	r.cancel()
	r.remove(true)
}

// dropBodyLocked lets go of request bytes nobody will read, giving their connection
// window back (the client's other streams share it). r.mu held.
func (r *restStream) dropBodyLocked(b *batch) {
	if n := int64(len(r.body)); n > 0 {
		r.sc.c.returnConnWindow(n, b)
	}
	r.body = nil
}

// halfClosedRemote reports whether the client ended its side of the stream.
func (r *restStream) halfClosedRemote() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodyEnd
}

// returnLocked gives n received bytes back to the client's windows. r.mu held.
func (r *restStream) returnLocked(n int64, b *batch) {
	c := r.sc.c
	if n <= 0 || !c.lockWrite() {
		return
	}
	r.recvWin += c.refreshLocked(r.id, &r.owed, r.bodyEnd, n)
	c.unlockWrite(b)
}

// --- the request body -----------------------------------------------------------------

type restBody struct{ r *restStream }

func (rb restBody) Read(p []byte) (int, error) {
	r := rb.r
	var b batch
	defer b.flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.body) == 0 && !r.bodyEnd && r.dead == nil && !r.bodyDone {
		r.cond.Wait()
	}
	if r.bodyDone {
		return 0, errStreamClosed
	}
	if len(r.body) > 0 {
		n := copy(p, r.body)
		r.body = r.body[n:]
		if len(r.body) == 0 {
			r.body = nil
		}
		r.returnLocked(int64(n), &b)
		return n, nil
	}
	if r.dead != nil {
		return 0, r.dead
	}
	for k, vv := range r.trailerIn {
		if r.req.Trailer == nil {
			r.req.Trailer = http.Header{}
		}
		r.req.Trailer[k] = vv
	}
	r.trailerIn = nil
	return 0, io.EOF
}

func (rb restBody) Close() error {
	r := rb.r
	r.mu.Lock()
	r.bodyDone = true
	var b batch
	r.dropBodyLocked(&b)
	r.mu.Unlock()
	b.flush()
	return nil
}

// --- http.ResponseWriter -------------------------------------------------------------

func (r *restStream) Header() http.Header { return r.hdr }

func (r *restStream) WriteHeader(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeHeaderLocked(code)
}

func (r *restStream) writeHeaderLocked(code int) {
	if r.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational responses are not relayed
	}
	r.wroteHeader = true
	r.status = code
	if code == http.StatusNoContent || code == http.StatusNotModified {
		r.noBody = true
	}
}

func (r *restStream) Write(p []byte) (int, error) {
	var b batch
	defer b.flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeHeaderLocked(http.StatusOK)
	if r.dead != nil {
		return 0, r.dead
	}
	if r.noBody {
		return len(p), nil
	}
	if !r.sentHeader {
		if err := r.sendHeaderLocked(false, &b); err != nil {
			return 0, err
		}
	}
	c := r.sc.c
	written := 0
	for written < len(p) {
		if r.dead != nil {
			return written, r.dead
		}
		if !c.lockWrite() {
			return written, errStreamClosed
		}
		n := min(int64(len(p)-written), r.sendWin, c.sendWin, int64(c.peerFrame), c.roomLocked())
		if n > 0 {
			c.appendData(r.id, false, p[written:written+int(n)])
			c.sendWin -= n
			r.sendWin -= n
			written += int(n)
		}
		c.unlockWrite(&b)
		if n <= 0 {
			// No window: let out what was written, then wait for a WINDOW_UPDATE.
			r.mu.Unlock()
			b.flush()
			r.mu.Lock()
			if r.dead == nil && (r.sendWin <= 0 || r.connWindowLocked() <= 0) {
				r.cond.Wait()
			}
		}
	}
	return written, nil
}

// connWindowLocked is what the connection lets a stream send now: its window, and room
// in its write buffer (when there is none, the writer wakes the REST streams once it
// takes the buffer). r.mu held.
func (r *restStream) connWindowLocked() int64 {
	c := r.sc.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 1 // let the writer find the connection closed
	}
	room := c.roomLocked()
	if room <= 0 {
		c.full = true
	}
	return min(c.sendWin, room)
}

// Flush sends the response header if it has not gone yet; written data goes out with
// each Write.
func (r *restStream) Flush() { _ = r.FlushError() }

func (r *restStream) FlushError() error {
	var b batch
	defer b.flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeHeaderLocked(http.StatusOK)
	if r.dead != nil {
		return r.dead
	}
	if !r.sentHeader {
		return r.sendHeaderLocked(false, &b)
	}
	return nil
}

// sendHeaderLocked writes the response HEADERS. r.mu held.
func (r *restStream) sendHeaderLocked(end bool, b *batch) error {
	c := r.sc.c
	fields := make([]hpack.HeaderField, 0, len(r.hdr)+1)
	fields = append(fields, hpack.HeaderField{Name: ":status", Value: strconv.Itoa(r.status)})
	for k, vv := range r.hdr {
		lk := strings.ToLower(k)
		if !call.Downstream(lk) || lk == "host" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		if r.noBody && lk == "content-length" && r.status != http.StatusOK {
			continue
		}
		for _, v := range vv {
			fields = append(fields, hpack.HeaderField{Name: lk, Value: v})
		}
	}
	if !c.lockWrite() {
		return errStreamClosed
	}
	c.writeHeaders(r.id, end, fields)
	c.unlockWrite(b)
	r.sentHeader = true
	if end {
		r.ended = true
	}
	return nil
}

// trailerFields are the response trailers the handler set: keys with http.TrailerPrefix,
// and keys it declared in a Trailer header.
func (r *restStream) trailerFields() []hpack.HeaderField {
	var out []hpack.HeaderField
	add := func(k string, vv []string) {
		lk := strings.ToLower(k)
		if !call.Downstream(lk) || lk == "content-length" {
			return
		}
		for _, v := range vv {
			out = append(out, hpack.HeaderField{Name: lk, Value: v})
		}
	}
	for k, vv := range r.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), vv)
		}
	}
	for _, v := range r.hdr.Values("Trailer") {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				add(k, r.hdr.Values(k))
			}
		}
	}
	return out
}

// finish ends the response when the handler returns.
func (r *restStream) finish() {
	var b batch
	defer b.flush()
	r.mu.Lock()
	r.writeHeaderLocked(http.StatusOK)
	if r.dead == nil && !r.ended {
		trl := r.trailerFields()
		switch {
		case !r.sentHeader && len(trl) == 0:
			_ = r.sendHeaderLocked(true, &b)
		default:
			if !r.sentHeader {
				_ = r.sendHeaderLocked(false, &b)
			}
			if c := r.sc.c; c.lockWrite() {
				if len(trl) > 0 {
					c.writeHeaders(r.id, true, trl)
				} else {
					c.appendData(r.id, true, nil)
				}
				c.unlockWrite(&b)
			}
			r.ended = true
		}
	}
	if r.ended && !r.bodyEnd && r.dead == nil {
		// The response is complete but the client is still sending: tell it to stop
		// (RFC 9113 §8.1), as net/http does.
		if c := r.sc.c; c.lockWrite() {
			_ = c.fr.WriteRSTStream(r.id, http2.ErrCodeNo)
			c.unlockWrite(&b)
		}
	}
	r.closeLocked(&b)
}

// abort resets the stream after a handler panic (http.ErrAbortHandler above all: a
// response that cannot be completed must not look complete).
func (r *restStream) abort(code http2.ErrCode) {
	var b batch
	defer b.flush()
	r.mu.Lock()
	if r.dead == nil && !r.ended {
		if c := r.sc.c; c.lockWrite() {
			_ = c.fr.WriteRSTStream(r.id, code)
			c.unlockWrite(&b)
		}
	}
	r.closeLocked(&b)
}

// closeLocked marks the stream closed, drops what is left of the request body, wakes the
// handler's waiters and forgets the stream. It is called with r.mu held and unlocks it.
func (r *restStream) closeLocked(b *batch) {
	if r.dead == nil {
		r.dead = errStreamClosed
	}
	r.dropBodyLocked(b)
	r.cond.Broadcast()
	r.mu.Unlock()
	r.cancel()
	r.removeEarly(false, b)
}

func (r *restStream) remove(clientReset bool) {
	var b batch
	early := clientReset && time.Since(r.start) < prematureResetLifetime
	r.removeEarly(early, &b)
	b.flush()
}

// removeEarly takes the stream out of its connection's table once.
func (r *restStream) removeEarly(early bool, b *batch) {
	r.sc.remove(r.id, r, nil, early, b)
}

// connectionState is the client connection's TLS state for a REST request (nil in
// plaintext), as net/http gives its handlers.
func (s *clientConn) connectionState() *tls.ConnectionState {
	tc, ok := s.c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	return &st
}
