package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/mirror"
	"github.com/milvus-lb/milvus-lb/internal/sock"
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
	// Mirror sends the copies of mirrored calls (call.Mirror); nil: none are sent.
	Mirror *mirror.Sender
}

// ServeHTTP serves a request net/http read (HTTP/1.1): REST only, as gRPC needs HTTP/2.
func (sv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { sv.REST.ServeHTTP(w, r) }

// clientConn is the server side of a client connection.
type clientConn struct {
	sv *Server
	c  *h2conn
	o  Options
	// tlsVersion and sni are what every call's record and routing read of the TLS
	// connection (0 and "" in plaintext); not the whole ConnectionState, which would
	// keep a few hundred bytes per idle connection (REST builds it when it needs it).
	tlsVersion uint16
	sni        string
	up         call.Conn      // what upstream headers say about this connection
	route      call.RouteMemo // the last call's route; reader goroutine only
	addr       string         // the client's address:port, for the record
	src        netip.Addr     // the client's address, for source-ip conditions

	pingTimer *time.Timer
	// streams are the open streams by id, and nrest how many of them are REST's;
	// guarded by c.mu (streams.go).
	streams map[uint32]clientStream
	nrest   int
	// free are finished streams for the next calls (reuse.go); guarded by c.mu.
	free []*stream
	// replayHeld is what this connection's streams keep for replays (stream.go), held
	// what they hold while their decisions wait for their first messages (hold.go).
	replayHeld atomic.Int64
	held       atomic.Int64
	closeOnce  sync.Once
	// ended is Serve's: called when the reader that ends the connection is done.
	ended func()
	// ctrlRun counts the PING and SETTINGS frames (each owed an acknowledgement) the client
	// sent since its last frame of any other kind; see maxControlRun. Reader goroutine only.
	ctrlRun int
	// The drain (drain.go), guarded by c.mu: its step, whether the relay's SETTINGS went
	// out (started), whether a new connection's wait for its first stream is over.
	drain       int
	started     bool
	drainWaited bool
	drainTimer  *time.Timer
}

// fieldsPool holds the header lists of streams that were dropped (reuse.go): a stream
// keeps its lists from one call to the next (keptList) and gives them back here when it
// will have no next call.
var fieldsPool = sync.Pool{New: func() any { f := make([]hpack.HeaderField, 0, 24); return &f }}

// maxKeptFields: a header list grown past this many fields (a rare request) is left to
// the collector rather than kept for the next, in fieldsPool or blockFields.
const maxKeptFields = 64

// keptList returns the list *p, emptied, for a stream's use until clearFields: taken from
// fieldsPool when the stream has none, or when the one it had grew past maxKeptFields for
// a rare call (that one is left to the collector).
func keptList(p **[]hpack.HeaderField) *[]hpack.HeaderField {
	if *p == nil || cap(**p) > maxKeptFields {
		*p = fieldsPool.Get().(*[]hpack.HeaderField)
	}
	clearFields(*p) // what a call that finished without emptying it left
	return *p
}

// clearFields empties a list a stream keeps for its next call (reqList, replyList):
// cleared, so that it keeps no strings alive.
func clearFields(p *[]hpack.HeaderField) {
	if p != nil {
		clear(*p)
		*p = (*p)[:0]
	}
}

// checkFieldsTail, set by this package's tests, has putFields check what its clearing
// assumes, at every Put the tests make: a caller that re-sliced a list shorter before
// giving it back would leave strings past its length, kept alive by the pool.
var checkFieldsTail bool

func mustBeClearPastLen(f []hpack.HeaderField) {
	for _, hf := range f[len(f):cap(f)] {
		if hf != (hpack.HeaderField{}) {
			panic("relay: a header list was re-sliced shorter before putFields: " + hf.Name + " past its length")
		}
	}
}

// putFields gives a list back, cleared so that the pool keeps no strings alive. Only its
// length is cleared: every list comes from the pool cleared and only grows by append, so
// nothing past its length was written (clearing the whole capacity, 24 fields, three
// times a call, was 370 instructions per Search call).
func putFields(f *[]hpack.HeaderField) {
	if f != nil && cap(*f) <= maxKeptFields {
		if checkFieldsTail {
			mustBeClearPastLen(*f)
		}
		clearFields(f)
		fieldsPool.Put(f)
	}
}

// NewConn prepares to serve nc, on which the client speaks HTTP/2 (ALPN h2 after TLS,
// or the h2c preface), with gRPC calls relayed frame by frame. Requests that are not
// gRPC are served by sv.REST (rest.go).
func (sv *Server) NewConn(nc net.Conn, o Options) *Conn {
	s := &clientConn{sv: sv, o: o, addr: nc.RemoteAddr().String(), streams: map[uint32]clientStream{}}
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
	s.c.henc.setTableSize(clientTableSize)
	s.c.onWritable = s.writable
	s.c.sk.MayPark = s.mayPark
	if o.MaxHeaderBytes > 0 {
		s.c.hd = newBlockDecoder(uint32(o.MaxHeaderBytes))
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		s.tlsVersion, s.sni = st.Version, st.ServerName
		if len(st.PeerCertificates) > 0 {
			s.up.ClientCert = call.ClientCertValue(st.PeerCertificates)
		}
	}
	if host, _, err := net.SplitHostPort(s.addr); err == nil {
		s.up.ClientIP = host
	}
	if ap, err := netip.ParseAddrPort(s.addr); err == nil {
		s.src = ap.Addr()
	}
	return &Conn{s: s}
}

// Serve serves the connection. It returns when the connection has ended or when it
// parks (park.go: a new goroutine reads on when the client sends something); ended, if
// not nil, is called once the connection has ended, by whichever goroutine ended it.
func (hc *Conn) Serve(ended func()) {
	hc.s.ended = ended
	hc.s.serve()
}

// Close closes the connection at once; its calls are cancelled.
func (hc *Conn) Close() { _ = hc.s.c.nc.Close() }

func (s *clientConn) serve() {
	err := s.start(&s.c.rb)
	if err == nil {
		s.c.sk.ParkSoon(parkAfter)
		if err = s.readFrames(&s.c.rb); err == errParked {
			return
		}
	}
	s.end(err)
}

// end ends the connection for err, when its reader stops.
func (s *clientConn) end(err error) {
	c := s.c
	b := &c.rb
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
	if s.ended != nil {
		s.ended()
	}
}

// start reads the client's preface and sends the server's SETTINGS and connection window.
func (s *clientConn) start(b *batch) error {
	c := s.c
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
	c.mu.Lock()
	s.started = true
	c.mu.Unlock()
	s.noticeDrain()
	if s.o.PingInterval > 0 {
		s.pingTimer = time.AfterFunc(s.o.PingInterval, s.keepalive)
	}
	return nil
}

// readFrames reads and acts on the client's frames until the connection fails or closes.
func (s *clientConn) readFrames(b *batch) error {
	c := s.c
	c.lendReadFramer(s.o.MaxHeaderBytes)
	for {
		// Frames for the client itself (acknowledgements, window updates, errors) go out
		// here rather than from beforeRead: a TLS write nested in the TLS read would
		// double the stack that every idle connection's reader keeps.
		if b.take(c) {
			c.flush(true)
		}
		c.br.header = true
		f, err := c.lent.fr.ReadFrame()
		if err != nil && errors.Is(err, sock.ErrParked) {
			if s.park() {
				return errParked
			}
			continue
		}
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
		c.lent.failed = true // see readFramer.failed
		var se http2.StreamError
		if !errors.As(err, &se) {
			c.giveBackReadFramer()
			return err
		}
		// A stream error (RFC 9113 §5.4.2): that stream is reset, the connection goes
		// on. A malformed HEADERS frame still used up its stream id.
		c.mu.Lock()
		if se.StreamID%2 == 1 && se.StreamID > c.lastID {
			c.lastID = se.StreamID
		}
		c.mu.Unlock()
		s.countError("stream_" + strings.ToLower(se.Code.String()))
		s.resetStream(se.StreamID, se.Code, b)
	}
}

// writable wakes what waits for room in the client connection's write buffer.
func (s *clientConn) writable(b *batch) {
	c := s.c
	c.wakeBlocked(b)
	c.grantDeferred(b)
	s.wakeREST()
}

// wakeREST lets the REST streams' writers waiting for window or room try again.
func (s *clientConn) wakeREST() {
	s.c.mu.Lock()
	if s.nrest == 0 {
		s.c.mu.Unlock()
		return
	}
	var rest []*restStream
	for _, st := range s.streams {
		if r, ok := st.(*restStream); ok {
			rest = append(rest, r)
		}
	}
	s.c.mu.Unlock()
	for _, r := range rest {
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
		s.stopDrain()
		s.c.markClosed(err)
		var b batch
		for _, st := range s.all() {
			st.clientGone(&b)
		}
		b.flush()
		s.c.mu.Lock()
		s.dropFree() // what its streams keep goes back to the pools
		s.c.mu.Unlock()
	})
}

// clientTableSize is the HPACK table a client connection's replies are encoded with:
// room for a gRPC reply's fields (content-type, grpc-status and grpc-message take 148
// bytes of it), so that from its second call on a client reads them as one-byte indexes.
// As literals on every call (a table of size 0), they cost the bench's Go client about
// 1 µs more per Search call, 3-4 % of its CPU per call (docs/benchmarks.md, "Reply
// headers indexed again"). The table and x/net's two maps over it are about 0.7 KiB per
// connection; a connection silent for PingInterval lets go of them (keepalive).
const clientTableSize = 256

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
	if silent >= s.o.PingInterval {
		s.dropFree() // an idle connection keeps no streams for calls (reuse.go)
		c.henc.forget()
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

// IsH2Preface reports whether p starts with the HTTP/2 client connection preface (or
// the part of it that p holds).
func IsH2Preface(p []byte) bool {
	n := min(len(p), len(http2.ClientPreface))
	return n > 0 && bytes.Equal(p[:n], []byte(http2.ClientPreface)[:n])
}
