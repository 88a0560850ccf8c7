package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// Options configure the relay's side of one client connection.
type Options struct {
	MaxConcurrentStreams uint32
	MaxHeaderBytes       int
	// HandshakeTimeout bounds the wait for the client's connection preface.
	HandshakeTimeout time.Duration
	// PingInterval of silence from the client makes the relay ping it; without an
	// answer within PingTimeout the connection is closed. Zero: no pings.
	PingInterval, PingTimeout time.Duration
	// WriteTimeout closes the connection when a write to the client blocks this long.
	WriteTimeout time.Duration
	// OnActive, if set, is called when the connection gets its first open stream (true)
	// and when its last one ends (false), for the idle timeout.
	OnActive func(active bool)
	// OnStreamEnd, if set, is called when a stream ends, early when the client reset it
	// within a second of opening it; it returns true to close the connection (the
	// rapid-reset guard).
	OnStreamEnd func(early bool) (closeConn bool)
	// CountError, if set, counts an HTTP/2 error or defence, by a name from a small fixed
	// set: "conn_" or "stream_" and the lower-case error code sent
	// ("stream_protocol_error", "conn_enhance_your_calm"), net/http's names where the
	// event is the same ("conn_close_lost_ping", "too_many_early_resets"), and
	// "headers_too_large". The same counter as http.HTTP2Config.CountError.
	CountError func(kind string)
}

// Conn is a client's HTTP/2 connection served by the relay. Serve runs it; Shutdown
// and Close may be called from other goroutines.
type Conn struct {
	s *clientConn
}

// Server relays the HTTP/2 connections of one listener port. Immutable; safe for
// concurrent use.
type Server struct {
	Port *call.Port
	Pool *Pool        // backend connections, shared by every port
	REST http.Handler // serves the requests that are not gRPC (rest.go)
}

// ServeHTTP serves a request net/http read (HTTP/1.1): REST only, as gRPC needs HTTP/2.
func (sv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { sv.REST.ServeHTTP(w, r) }

// clientConn is the server side of a client connection.
type clientConn struct {
	sv   *Server
	c    *h2conn
	o    Options
	tls  *tls.ConnectionState
	up   call.Conn // what upstream headers say about this connection
	addr string    // the client's address:port, for the record

	pingTimer *time.Timer
	// rest holds the streams served by Server.REST (rest.go); guarded by c.mu.
	rest      map[uint32]*restStream
	closeOnce sync.Once
	// ctrlRun counts the PING and SETTINGS frames (each owed an acknowledgement) the client
	// sent since its last frame of any other kind; see maxControlRun. Reader goroutine only.
	ctrlRun int
}

// fieldsPool recycles the header lists the relay builds (requests for backends, response
// headers and trailers for clients): they live only until their HEADERS are encoded.
var fieldsPool = sync.Pool{New: func() any { f := make([]hpack.HeaderField, 0, 24); return &f }}

func getFields() *[]hpack.HeaderField {
	f := fieldsPool.Get().(*[]hpack.HeaderField)
	*f = (*f)[:0]
	return f
}

func putFields(f *[]hpack.HeaderField) {
	if f != nil && cap(*f) <= 64 {
		clear((*f)[:cap(*f)])
		*f = (*f)[:0]
		fieldsPool.Put(f)
	}
}

// NewConn prepares to serve nc, on which the client speaks HTTP/2 (ALPN h2 after TLS,
// or the h2c preface), with gRPC calls relayed frame by frame. Requests that are not
// gRPC are served by sv.REST (rest.go).
func (sv *Server) NewConn(nc net.Conn, o Options) *Conn {
	s := &clientConn{sv: sv, o: o, addr: nc.RemoteAddr().String()}
	s.up = call.Conn{TLS: sv.Port.TLS, Port: strconv.Itoa(sv.Port.Number)}
	// Under TLS the reader only copies out of tls.Conn's own record buffer, so a small
	// buffer costs no syscalls and keeps an idle connection small; in plaintext it saves
	// a syscall per small frame.
	readBuf := 4 << 10
	if _, ok := nc.(*tls.Conn); ok {
		readBuf = 512
	}
	s.c = newH2conn(nc, true, readBuf, clientConnWindow, o.WriteTimeout)
	s.c.name = "client"
	// The relay does not advertise SETTINGS_MAX_FRAME_SIZE: a client's frames are at most
	// 16 KiB, which bounds the read buffer of every connection.
	s.c.fr.SetMaxReadFrameSize(defaultFrame)
	s.c.onWritable = s.writable
	if o.MaxHeaderBytes > 0 {
		s.c.fr.MaxHeaderListSize = uint32(o.MaxHeaderBytes)
		s.c.hd = newBlockDecoder(uint32(o.MaxHeaderBytes))
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		s.tls = &st
		if len(st.PeerCertificates) > 0 {
			s.up.ClientCert = call.ClientCertValue(st.PeerCertificates)
		}
	}
	if host, _, err := net.SplitHostPort(s.addr); err == nil {
		s.up.ClientIP = host
	}
	return &Conn{s: s}
}

// Serve serves the connection until it closes.
func (hc *Conn) Serve() { hc.s.serve() }

// Shutdown sends GOAWAY: calls in progress finish, no new ones start, and the
// connection closes when the last one ends.
func (hc *Conn) Shutdown() {
	s := hc.s
	c := s.c
	var b batch
	if c.lockWrite() {
		if !c.goAway {
			c.goAway = true
			_ = c.fr.WriteGoAway(c.lastID, http2.ErrCodeNo, nil)
		}
		idle := len(c.streams)+len(s.rest) == 0
		c.unlockWrite(&b)
		b.flush()
		if idle {
			go func() {
				c.flushWait()
				hc.Close()
			}()
		}
	}
}

// Close closes the connection at once; its calls are cancelled.
func (hc *Conn) Close() { _ = hc.s.c.nc.Close() }

func (s *clientConn) serve() {
	c := s.c
	b := &c.rb
	err := func() error {
		if s.o.HandshakeTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(s.o.HandshakeTimeout))
		}
		var preface [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(c.br, preface[:]); err != nil {
			return err
		}
		if string(preface[:]) != http2.ClientPreface {
			return errors.New("not an HTTP/2 connection preface")
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		if !c.lockWrite() {
			return c.werr
		}
		settings := []http2.Setting{
			{ID: http2.SettingMaxConcurrentStreams, Val: s.maxStreams()},
			{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		}
		if s.o.MaxHeaderBytes > 0 {
			settings = append(settings, http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(s.o.MaxHeaderBytes)})
		}
		_ = c.fr.WriteSettings(settings...)
		_ = c.fr.WriteWindowUpdate(0, uint32(clientConnWindow-initialWindow))
		c.unlockWrite(b)
		b.flush()
		if s.o.PingInterval > 0 {
			s.pingTimer = time.AfterFunc(s.o.PingInterval, s.keepalive)
		}
		for {
			// Frames for the client itself (acknowledgements, window updates, errors)
			// go out here rather than from beforeRead: a TLS write nested in the TLS
			// read would double the stack that every idle connection's reader keeps.
			if b.take(c) {
				c.flush(true)
			}
			f, err := c.fr.ReadFrame()
			if err == nil {
				c.frameRead()
				err = s.frame(f, b)
			} else if errors.Is(err, http2.ErrFrameTooLarge) {
				err = http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			if err == nil {
				// What the frame produced is flushed when the reader runs out of input
				// (beforeRead), with what the frames after it produce.
				continue
			}
			var se http2.StreamError
			if errors.As(err, &se) {
				// A stream error (RFC 9113 §5.4.2): that stream is reset, the connection
				// goes on. A malformed HEADERS frame still used up its stream id.
				c.mu.Lock()
				if se.StreamID%2 == 1 && se.StreamID > c.lastID {
					c.lastID = se.StreamID
				}
				c.mu.Unlock()
				s.countError("stream_" + strings.ToLower(se.Code.String()))
				s.resetStream(se.StreamID, se.Code, b)
			} else {
				return err
			}
		}
	}()
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		s.countError("conn_" + strings.ToLower(http2.ErrCode(ce).String()))
	}
	if errors.As(err, &ce) && c.lockWrite() {
		_ = c.fr.WriteGoAway(c.lastID, http2.ErrCode(ce), nil)
		c.unlockWrite(b)
	}
	b.flush()
	c.flushWait()
	s.close(err)
}

// writable wakes what waits for room in the client connection's write buffer.
func (s *clientConn) writable(b *batch) {
	c := s.c
	c.wakeBlocked(b)
	c.grantDeferred(b)
	for _, r := range s.restStreams() {
		r.wake()
	}
}

func (s *clientConn) countError(kind string) {
	if s.o.CountError != nil {
		s.o.CountError(kind)
	}
}

func (s *clientConn) maxStreams() uint32 {
	if s.o.MaxConcurrentStreams > 0 {
		return s.o.MaxConcurrentStreams
	}
	return 1000
}

func (s *clientConn) close(err error) {
	s.closeOnce.Do(func() {
		if s.pingTimer != nil {
			s.pingTimer.Stop()
		}
		streams, _ := s.c.markClosed(err)
		var b batch
		for _, st := range streams {
			st.clientGone(&b)
		}
		b.flush()
		s.c.mu.Lock()
		rest := make([]*restStream, 0, len(s.rest))
		for _, r := range s.rest {
			rest = append(rest, r)
		}
		s.c.mu.Unlock()
		for _, r := range rest {
			r.reset(errStreamClosed)
		}
	})
}

// keepalive pings a client that has been silent for PingInterval and closes the
// connection if the PING is not answered within PingTimeout.
func (s *clientConn) keepalive() {
	c := s.c
	silent := time.Duration(time.Now().UnixNano() - c.lastRead.Load())
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.pingOut {
		if silent >= s.o.PingTimeout {
			c.mu.Unlock()
			s.countError("conn_close_lost_ping")
			_ = c.nc.Close()
			return
		}
	}
	c.mu.Unlock()
	next := s.o.PingInterval - silent
	if silent >= s.o.PingInterval {
		var b batch
		if c.lockWrite() {
			_ = c.fr.WritePing(false, [8]byte{'m', 'l', 'b'})
			c.pingOut = true
			c.unlockWrite(&b)
		}
		b.flush()
		next = s.o.PingTimeout
	}
	s.pingTimer.Reset(max(next, 100*time.Millisecond))
}

// maxControlRun is how many PING and SETTINGS frames in a row, with no other frame
// between them, end a connection (GOAWAY ENHANCE_YOUR_CALM). Each asks for an
// acknowledgement; a client flooding them without reading the answers fills the kernel's
// socket buffers (megabytes) before any write blocks long enough for --write-timeout, and
// meanwhile costs a write per batch. Legitimate clients send a few: keepalive pings and
// grpc-go's BDP pings, which come with the DATA and WINDOW_UPDATE frames of their calls.
// net/http's server has the same bound on queued control frames.
const maxControlRun = 10000

// frame handles one frame from the client, with the stream state checks of RFC 9113
// §5.1: an id above every one the client opened is idle, an id at or below it with no
// stream is closed, and a stream whose client sent END_STREAM is half-closed (remote).
// It returns a StreamError to reset one stream, or any other error to end the connection.
func (s *clientConn) frame(f http2.Frame, b *batch) error {
	c := s.c
	switch f.(type) {
	case *http2.PingFrame, *http2.SettingsFrame:
		if s.ctrlRun++; s.ctrlRun > maxControlRun {
			s.sv.Port.Log.Warn("closing connection: flood of PING or SETTINGS frames", "remote", c.nc.RemoteAddr().String())
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
	default:
		s.ctrlRun = 0
	}
	switch f := f.(type) {
	case *http2.HeadersFrame:
		hb, err := c.hd.read(c.fr, f)
		if err != nil {
			return err
		}
		return s.headers(hb, b)
	case *http2.DataFrame:
		id := f.StreamID
		if r := s.restStream(id); r != nil {
			return r.data(f, b)
		}
		st := c.lookup(id)
		if st != nil {
			st.mu.Lock()
			ended := st.clientEnded
			st.mu.Unlock()
			if !ended {
				st.fromClientData(f, b)
				return nil
			}
		}
		// Not forwarded: the connection window is given back all the same.
		c.returnConnWindow(int64(f.Length), b)
		if st == nil && s.idle(id) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	case *http2.RSTStreamFrame:
		if s.idle(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if r := s.restStream(f.StreamID); r != nil {
			r.reset(errStreamReset)
		} else if st := c.lookup(f.StreamID); st != nil {
			st.fromClientReset(b)
			c.grantDeferred(b)
		}
	case *http2.SettingsFrame:
		c.mu.Lock()
		old := c.peerWin
		c.mu.Unlock()
		if err := c.settings(f, b); err != nil {
			return err
		}
		c.mu.Lock()
		delta := int64(c.peerWin) - int64(old)
		c.mu.Unlock()
		if delta != 0 {
			for _, r := range s.restStreams() {
				if !r.windowUpdate(delta) {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
		}
	case *http2.WindowUpdateFrame:
		id, inc := f.StreamID, int64(f.Increment)
		if id == 0 {
			c.mu.Lock()
			over := c.sendWin+inc > maxWindow
			c.mu.Unlock()
			if over {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			c.windowUpdate(f, b)
			c.grantDeferred(b)
			for _, r := range s.restStreams() {
				r.wake()
			}
			return nil
		}
		if s.idle(id) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if r := s.restStream(id); r != nil {
			if !r.windowUpdate(inc) {
				return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
			}
			return nil
		}
		if st := c.lookup(id); st != nil {
			st.mu.Lock()
			over := !st.finished && st.down.win+inc > maxWindow
			st.mu.Unlock()
			if over {
				return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
			}
			c.windowUpdate(f, b)
			c.grantDeferred(b)
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
	case *http2.PingFrame:
		if f.IsAck() {
			c.mu.Lock()
			c.pingOut = false
			c.mu.Unlock()
		} else if c.lockWrite() {
			_ = c.fr.WritePing(true, f.Data)
			c.unlockWrite(b)
		}
	case *http2.GoAwayFrame:
		// The client will open no more streams; those it has go on.
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// headers handles a header block from the client: a new call, or the end of one.
func (s *clientConn) headers(f *headerBlock, b *batch) error {
	c := s.c
	id := f.StreamID
	if r := s.restStream(id); r != nil {
		return r.trailers(f)
	}
	if st := c.lookup(id); st != nil {
		st.mu.Lock()
		ended := st.clientEnded
		st.mu.Unlock()
		if ended {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			// Trailers must end the stream and carry no pseudo-header (§8.1).
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		st.fromClientEnd(b)
		return nil
	}
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if !s.idle(id) {
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	return s.newStream(f, b)
}

// idle reports whether id names a stream the client has not opened (RFC 9113 §5.1):
// above every id it used, or even (the relay never pushes).
func (s *clientConn) idle(id uint32) bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return id%2 == 0 || id > c.lastID
}

// restStream looks a REST stream up by id.
func (s *clientConn) restStream(id uint32) *restStream {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.rest[id]
}

func (s *clientConn) restStreams() []*restStream {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(s.rest) == 0 {
		return nil
	}
	out := make([]*restStream, 0, len(s.rest))
	for _, r := range s.rest {
		out = append(out, r)
	}
	return out
}

func (s *clientConn) resetStream(id uint32, code http2.ErrCode, b *batch) {
	if r := s.restStream(id); r != nil {
		r.reset(errStreamReset)
	} else if st := s.c.lookup(id); st != nil {
		st.fromClientReset(b)
	}
	if s.c.lockWrite() {
		_ = s.c.fr.WriteRSTStream(id, code)
		s.c.unlockWrite(b)
	}
}

// newStream starts a call from the client's HEADERS.
func (s *clientConn) newStream(f *headerBlock, b *batch) error {
	c := s.c
	id := f.StreamID
	c.mu.Lock()
	c.lastID = id
	refuse := c.goAway || uint32(len(c.streams)+len(s.rest)) >= s.maxStreams()
	c.mu.Unlock()
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
	cl, ok := checkRequest(f)
	if !ok {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	path := f.PseudoValue("path")
	authority := f.PseudoValue("authority")
	ct := ""
	timeout := ""
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "content-type":
			ct = hf.Value
		case "grpc-timeout":
			timeout = hf.Value
		}
	}
	if f.PseudoValue("method") != "POST" || !isGRPCContentType(ct) {
		// Not gRPC: served by sv.REST (REST, redirects, errors as HTTP statuses).
		s.startREST(f, cl, b)
		return nil
	}
	if authority == "" {
		for _, hf := range f.RegularFields() {
			if hf.Name == "host" {
				authority = hf.Value
			}
		}
	}

	st := &stream{sc: s, cc: c, cid: id}
	st.call.Begin(s.sv.Port, path, true, time.Now())
	st.call.Rec.Client = s.addr
	if s.tls != nil {
		st.call.Rec.TLSVersion = s.tls.Version
	}
	st.clientEnded = f.StreamEnded()

	st.down.acct = &c.respQueued
	c.mu.Lock()
	st.down.win = int64(c.peerWin)
	c.streams[id] = st
	first := !c.active
	c.active = true
	c.mu.Unlock()
	if first && s.o.OnActive != nil {
		s.o.OnActive(true)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	sni := ""
	if s.tls != nil {
		sni = s.tls.ServerName
	}
	if _, fl := st.call.Route(authority, sni, path); fl != nil {
		st.failLocked(fl, b)
		return nil
	}
	st.reqFields = s.requestFields(f, st.call.Backend().TLS)
	if d, ok := call.ParseTimeout(timeout); ok {
		st.timer = time.AfterFunc(d, st.expire)
	}
	st.connectLocked(b)
	return nil
}

// expire fails a call whose grpc-timeout passed.
func (s *stream) expire() {
	var b batch
	defer b.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.call.Backend() != nil {
		s.failLocked(call.DeadlineExceeded(s.call.Service()), &b)
	}
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

// requestFields are the headers sent to the backend: the pseudo-header fields of the
// request, then the regular fields by the one upstream rule (call.Conn.Upstream).
func (s *clientConn) requestFields(f *headerBlock, backendTLS bool) *[]hpack.HeaderField {
	scheme := "http"
	if backendTLS {
		scheme = "https"
	}
	p := getFields()
	out := append(*p,
		hpack.HeaderField{Name: ":method", Value: "POST"},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":authority", Value: f.PseudoValue("authority")},
		hpack.HeaderField{Name: ":path", Value: f.PseudoValue("path")})
	*p = s.up.Upstream(out, f.RegularFields(), true)
	return p
}

// streamDone removes a finished stream from the client connection and runs the hooks.
// The stream's mu is held.
func (s *clientConn) streamDone(st *stream, early bool, b *batch) {
	c := s.c
	c.mu.Lock()
	if c.streams[st.cid] == st {
		delete(c.streams, st.cid)
	}
	c.mu.Unlock()
	s.afterStreamEnd(early, b)
}

// afterStreamEnd runs the hooks of a stream's end (gRPC or REST): the idle clock, the
// rapid-reset guard, and the close of a draining connection with its last stream.
func (s *clientConn) afterStreamEnd(early bool, b *batch) {
	c := s.c
	c.mu.Lock()
	last := len(c.streams)+len(s.rest) == 0 && c.active
	if last {
		c.active = false
	}
	drained := c.goAway && len(c.streams)+len(s.rest) == 0
	c.mu.Unlock()
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

// IsH2Preface reports whether p starts with the HTTP/2 client connection preface (or
// the part of it that p holds).
func IsH2Preface(p []byte) bool {
	n := min(len(p), len(http2.ClientPreface))
	return n > 0 && bytes.Equal(p[:n], []byte(http2.ClientPreface)[:n])
}
