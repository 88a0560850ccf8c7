package relay

// h2conn: one HTTP/2 connection of the relay (client or backend side), its framer and its
// write path (buffering, batching, flushing).

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// Windows the relay advertises. A stream's window bounds what the relay may have to hold
// for it when the other side is slower; the connection window bounds a connection's
// total. 1 MiB per stream keeps a 3 MiB insert moving in a few round trips. A client
// connection's window is one stream's: uploads to backends slower than their clients
// (32 concurrent 32 MiB inserts over 4 connections) queue up to it, so it is what each
// uploading connection costs; 4 MiB made the big-insert workload peak at 55 MiB
// against 35 MiB with 1 MiB, at the same MB/s (docs/benchmarks.md).
const (
	streamWindow           = 1 << 20
	clientConnWindow       = streamWindow
	relayBackendConnWindow = 16 << 20
	// backendStreamWindow is the stream window the relay announces to backends; a
	// stream's grows to streamWindow once its client is sent some of its data,
	// unless its client connection holds too much already (see clientConnBuffered).
	backendStreamWindow = 64 << 10
	// flushThreshold bounds a connection's write buffer: beyond it, the writer flushes
	// at once instead of waiting for its batch to end. Each write to a backend can wake
	// it: at 64 KiB a 3 MiB insert took 77 writes of the relay and 34 context switches
	// of the backend, at 256 KiB 43 and 25 (24 behind nginx), for 0.95x the relay's CPU
	// and 0.90x the backend's per message (docs/benchmarks.md, "Inserts, fewer
	// wake-ups").
	flushThreshold = 256 << 10
	initialWindow  = 65535
	defaultFrame   = 16384
)

// h2conn is one HTTP/2 connection of the relay: a client's (server side) or one to a
// backend endpoint (client side).
type h2conn struct {
	nc     net.Conn // what frames are read from and closed: the TLS connection, if any
	sk     *sock.Conn
	over   io.Writer // nc when it is a wrapper over sk (TLS): writes go through it first
	br     *frameReader
	fr     *http2.Framer
	hd     *blockDecoder // the header blocks the Framer reads (reader goroutine only)
	server bool          // faces a client
	name   string

	// lent is the Framer a client connection reads with, lent while its reader runs
	// (readframer.go); fr then only writes. A backend connection reads with fr.
	lent *readFramer

	// rb is the batch of the connection's reader goroutine, flushed when it is about to
	// wait for the socket (sk.BeforeRead). Reader goroutine only, as is framesRead.
	rb         batch
	framesRead int

	// lastRead is when frames last arrived (unix nanoseconds, see frameRead), for
	// keepalive pings.
	lastRead atomic.Int64
	closing  atomic.Bool

	mu   sync.Mutex
	wbuf []byte
	// spare is a written buffer a backend connection keeps for its next write while it
	// has streams (keepSpare): the connection every call's frames go through writes a
	// few times a call, and each write took a buffer from smallBufs and gave it back,
	// two rounds of the free list's lock. Given back when its last stream goes.
	spare      []byte
	sealed     [][]byte // full buffers waiting for the writer, before wbuf (see appendData)
	queued     int      // bytes in sealed and wbuf
	henc       *headerEncoder
	werr       error
	sendWin    int64 // connection-level window for what we send
	peerWin    int32 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32
	peerMaxStr uint32 // the peer's SETTINGS_MAX_CONCURRENT_STREAMS
	// recvOwed: bytes received and consumed, not yet returned by WINDOW_UPDATE. Counted
	// without mu (returnConnWindow): most calls add to it and find nothing due, and a
	// round of mu for that was two of the ten a Search call took.
	recvOwed   atomic.Int64
	connWindow int64              // the connection window we advertise
	streams    map[uint32]*stream // by backend stream id (backend side; a client connection keeps its own, streams.go)
	blocked    []*stream          // streams waiting for connection-level window
	nextID     uint32             // next stream id (client side)
	lastID     uint32             // highest stream id seen (server side)
	goAway     bool               // no new streams: GOAWAY sent or received
	closed     bool
	closeErr   error
	pingOut    bool // a keepalive PING of ours awaits its ACK
	active     bool // has streams, for the idle hook (server side)

	// Client side: deferred are streams whose backend window is held back while
	// respQueued (bytes waiting in the streams' queues for this connection) is over
	// clientConnBuffered (stream.go). deferred is guarded by mu.
	deferred   []*stream
	respQueued atomic.Int64
	// Backend side: uploading counts the streams whose request is still coming after
	// uploadThreshold bytes (Pool.ready spreads uploads over connections).
	uploading atomic.Int32
	// inFlight is len(streams) on the backend side, kept under mu and read without it
	// by Pool.ready, which would otherwise take every connection's lock per call.
	inFlight atomic.Int32
	grown    atomic.Int64 // the extra window its streams' backends were given (growLocked)

	// Writing: one goroutine at a time writes the connection (writing is set), the one
	// that flushed while nobody was, or, when the kernel would not take everything, the
	// socket's drain goroutine (drained). Meanwhile frames collect in wbuf, DATA up to
	// maxWriteBacklog (then the streams wait in blocked, full set): a peer that stops
	// reading stalls only its own connection, never the goroutine that produced its
	// frames, which for responses is a backend connection's reader shared by many calls.
	writing bool
	full    bool
	// handing: the writer is handing buffers to the socket, without c.mu; a drain that
	// ends meanwhile only sets drainedMeanwhile, and the writer looks again.
	handing          bool
	drainedMeanwhile bool
	// idle, if set, is closed when writing ends (flushWait).
	idle chan struct{}
	// onWritable wakes what waits for room in wbuf.
	onWritable func(b *batch)
}

func newH2conn(nc net.Conn, server bool, readBuf int, connWindow int64, writeTimeout time.Duration) *h2conn {
	c := &h2conn{
		nc: nc, server: server,
		sendWin: initialWindow, peerWin: initialWindow, peerFrame: defaultFrame, peerMaxStr: 1 << 31,
		connWindow: connWindow,
		streams:    make(map[uint32]*stream),
		nextID:     1,
	}
	var rd io.Reader = nc
	if c.sk = sock.Find(nc); c.sk == nil {
		// No socket of ours under nc (a connection made in a test): the wrapper writes
		// through nc from its drain goroutine every time, and reads through it for the
		// flush before each read.
		c.sk = sock.New(nc)
		rd = c.sk
	} else if c.sk != nc {
		c.over = nc
	}
	c.sk.BeforeRead = c.beforeRead
	c.sk.Buffer(writeTimeout, c.drained)
	c.onWritable = c.wakeBlocked
	c.br = newFrameReader(rd, readBuf)
	c.fr = http2.NewFramer(c, c.br)
	// DATA frames are copied out before the next read (appendData, queue), so the Framer
	// may reuse them.
	c.fr.SetReuseFrames()
	c.hd = newBlockDecoder(0)
	c.henc = newHeaderEncoder()
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// beforeRead flushes what the reader's frames produced, for every connection they went
// to, once everything received so far is handled: one write per connection per batch.
// If frames were handled since the last note, now is when the connection was last active
// (lastRead). Bytes that complete no frame do not count: a header block that never ends
// must not keep its connection alive.
func (c *h2conn) beforeRead() {
	if c.framesRead > 0 {
		c.noteRead()
	}
	c.rb.flush()
}

// frameRead notes a frame for keepalive, reading the clock only every 64 frames: a busy
// connection's reader runs out of input (beforeRead) often enough to keep lastRead
// fresh, and one streaming without pause still marks it every megabyte or so.
func (c *h2conn) frameRead() {
	if c.framesRead++; c.framesRead >= 64 {
		c.noteRead()
	}
}

func (c *h2conn) noteRead() {
	c.framesRead = 0
	c.lastRead.Store(time.Now().UnixNano())
}

// wakeBlocked lets the streams waiting for room in the buffer go on (the server side
// replaces it with one that also wakes its REST streams).
func (c *h2conn) wakeBlocked(b *batch) {
	c.mu.Lock()
	blocked := c.blocked
	c.blocked = nil
	c.mu.Unlock()
	for _, st := range blocked {
		st.adjustWindow(c, 0, 0, b) // pinned while listed
	}
}

// Write appends to the write buffer; it is the Framer's writer and is only called with
// c.mu held.
func (c *h2conn) Write(p []byte) (int, error) {
	if c.wbuf == nil {
		c.takeBuf()
	}
	c.wbuf = append(c.wbuf, p...)
	c.queued += len(p)
	return len(p), nil
}

// smallBufs hold write buffers. A connection holds one only while it has frames to
// write: an idle connection costs no buffer. They start small (most batches are a few
// small frames) and the large ones that bulk transfers grow are recycled too (bigBufs).
var smallBufs = bufs.New(32, 16<<10)

// bigBufSize fits a batch of DATA frames up to flushThreshold plus one more frame, so a
// bulk transfer's buffer never grows (growing copies it) once taken from bigBufs.
const bigBufSize = flushThreshold + defaultFrame + 2*frameHeaderLen

// bigBufs keeps big write buffers. A connection holds one only while it writes, so few
// are in use at once; at most 64 are kept (17 MiB), and bufs.Trim lets go of those a
// period did not use.
var bigBufs = bufs.New(64, bigBufSize)

const frameHeaderLen = 9

// appendData appends a DATA frame straight to the write buffer, with one copy of p
// (the Framer would build the frame in its own buffer first). c.mu held; len(p) is
// within the peer's frame size and roomLocked.
func (c *h2conn) appendData(id uint32, end bool, p []byte) {
	if c.wbuf == nil {
		c.takeBuf()
	}
	need := len(c.wbuf) + frameHeaderLen + len(p)
	if need > bigBufSize && len(c.wbuf) > 0 {
		// Another goroutine is writing (else the buffer would have been flushed at
		// flushThreshold): the full buffer waits for it as it is, and a new one starts.
		c.sealed = append(c.sealed, c.wbuf)
		c.wbuf = bigBufs.Get()
	} else if need > cap(c.wbuf) {
		nb := append(bigBufs.Get(), c.wbuf...)
		putWbuf(c.wbuf)
		c.wbuf = nb
	}
	var flags byte
	if end {
		flags = byte(http2.FlagDataEndStream)
	}
	n := len(p)
	c.wbuf = append(c.wbuf, byte(n>>16), byte(n>>8), byte(n), byte(http2.FrameData), flags,
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
	c.wbuf = append(c.wbuf, p...)
	c.queued += frameHeaderLen + n
}

// lockWrite takes c.mu for writing frames. The buffer is taken by the first frame
// written (takeBuf): a quarter of the writers per Search call write nothing (a
// consumed window below the threshold of a WINDOW_UPDATE).
func (c *h2conn) lockWrite() bool {
	c.mu.Lock()
	if c.closed || c.werr != nil {
		c.mu.Unlock()
		return false
	}
	return true
}

// takeBuf gives c, which has none, a write buffer: the spare, or one from smallBufs.
// c.mu held.
func (c *h2conn) takeBuf() {
	if c.wbuf, c.spare = c.spare, nil; c.wbuf == nil {
		c.wbuf = smallBufs.Get()
	}
}

// keepSpare keeps a written buffer for the connection's next write when it is a backend
// connection with streams and has none kept, and gives it back otherwise. c.mu held.
func (c *h2conn) keepSpare(b []byte) {
	if c.spare == nil && !c.server && len(c.streams) > 0 && !c.closed && cap(b) == smallBufs.Size {
		c.spare = b[:0]
		return
	}
	putWbuf(b)
}

// track puts stream s in c's table as id, where forget and markClosed take it out: the
// three keep inFlight the table's size. c.mu held.
func (c *h2conn) track(id uint32, s *stream) {
	c.streams[id] = s
	c.inFlight.Store(int32(len(c.streams)))
}

// forget takes stream s, id on c, out of c's table, if it is still there; a connection
// left without streams gives its spare buffer back.
func (c *h2conn) forget(id uint32, s *stream) {
	c.mu.Lock()
	if c.streams[id] == s {
		delete(c.streams, id)
		c.inFlight.Store(int32(len(c.streams)))
	}
	if len(c.streams) == 0 && c.spare != nil {
		putWbuf(c.spare)
		c.spare = nil
	}
	c.mu.Unlock()
}

// unlockWrite releases c.mu after writing frames and marks c for the batch's flush, or
// flushes at once when the buffer is large. The caller may hold a stream's lock, so the
// streams waiting for room are woken by the batch's flush, not here.
func (c *h2conn) unlockWrite(b *batch) {
	big := c.queued >= flushThreshold && !c.writing
	// Nothing written, no buffer to give back, no stream waiting for room: the batch's
	// flush would take c.mu only to find nothing to do (flush's first case).
	none := c.queued == 0 && c.wbuf == nil && !c.full
	c.mu.Unlock()
	if big {
		c.flush(false)
	}
	if !none {
		b.mark(c)
	}
}

func putWbuf(b []byte) {
	switch c := cap(b); {
	case c >= bigBufSize && c <= 2*bigBufSize:
		bigBufs.Put(b)
	case c >= smallBufs.Size && c < bigBufSize:
		smallBufs.Put(b)
	} // a smaller or larger one (headers of a huge response) is let go
}

// maxWriteBacklog bounds the DATA a connection's buffer takes while it is being written:
// beyond it, data waits in its streams' queues, which flow control bounds.
const maxWriteBacklog = 1 << 20

// flushWaitLimit bounds the wait for the last frames (a GOAWAY) before a close.
const flushWaitLimit = 250 * time.Millisecond

// roomLocked is how many more DATA bytes c's buffer takes now: up to maxWriteBacklog
// while it is being written, else up to a big buffer (the writer flushes it at
// flushThreshold). c.mu held.
func (c *h2conn) roomLocked() int64 {
	if c.writing {
		return max(0, maxWriteBacklog-int64(c.queued))
	}
	return max(0, int64(bigBufSize-frameHeaderLen-len(c.wbuf)))
}

// flush writes the buffer out, unless another goroutine is writing (it takes the buffer
// next). wake says whether it may run the streams that wait for room (no stream lock is
// held); if not, they are woken by the next flush that may. An idle connection is left
// holding no buffer.
func (c *h2conn) flush(wake bool) {
	c.mu.Lock()
	if c.writing || c.closed || c.werr != nil || c.queued == 0 {
		if !c.writing && c.wbuf != nil && c.queued == 0 {
			putWbuf(c.wbuf)
			c.wbuf = nil
		}
		w := wake && c.full && !c.writing
		if w {
			c.full = false
		}
		c.mu.Unlock()
		if w {
			c.wake()
		}
		return
	}
	c.writing = true
	c.writeLoop(wake)
}

// writeLoop writes the buffers until none is left or the kernel takes no more (then the
// socket's drain goroutine goes on and calls drained). c.mu held and c.writing set; it
// returns with c.mu released.
func (c *h2conn) writeLoop(wake bool) {
	for {
		bufs := c.sealed
		c.sealed = nil
		if len(c.wbuf) > 0 {
			bufs = append(bufs, c.wbuf)
			c.wbuf = nil
		}
		c.queued = 0
		// While this goroutine hands the buffers to the socket, a drain that ends must
		// not start another writer (drained): the buffers still in hand come first.
		c.handing, c.drainedMeanwhile = true, false
		c.mu.Unlock()
		var pending int
		var err error
		var last []byte // kept for the next write, if c keeps a spare (keepSpare)
		for i, buf := range bufs {
			if err == nil {
				pending, err = c.writeOut(buf)
			}
			if i == len(bufs)-1 {
				last = buf
			} else {
				putWbuf(buf)
			}
			bufs[i] = nil
		}
		c.mu.Lock()
		if last != nil {
			c.keepSpare(last)
		}
		c.handing = false
		if err != nil && c.werr == nil {
			c.werr = err
		}
		if pending > 0 && err == nil && !c.closed && !c.drainedMeanwhile {
			// The socket's drain goroutine calls drained when it is done.
			c.mu.Unlock()
			return
		}
		if err != nil || c.closed || c.queued == 0 {
			c.doneWritingLocked(wake)
			if err != nil {
				// The reader notices the closed socket and tears the connection down.
				_ = c.nc.Close()
			}
			return
		}
	}
}

// doneWritingLocked ends a write, waking the streams that wait for room if wake allows,
// and releases c.mu.
func (c *h2conn) doneWritingLocked(wake bool) {
	c.writing = false
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	if c.wbuf != nil && c.queued == 0 { // an idle connection holds no buffer
		putWbuf(c.wbuf)
		c.wbuf = nil
	}
	full := c.full && c.werr == nil
	c.full = false
	c.mu.Unlock()
	switch {
	case !full:
	case wake:
		c.wake()
	default:
		// This writer's caller may hold a stream's lock, so it cannot wake the streams
		// waiting for room; and a flush that could have found it busy and left them to
		// it. Rare (the buffer was full): a goroutine does it.
		go c.wake()
	}
}

// writeOut hands buf to the socket (through TLS, if any) and returns what waits there.
func (c *h2conn) writeOut(buf []byte) (int, error) {
	if c.over == nil {
		return c.sk.WriteNow(buf)
	}
	if _, err := c.over.Write(buf); err != nil {
		return 0, err
	}
	return c.sk.Flush()
}

// drained is called by the socket's drain goroutine when its backlog is written: what
// collected meanwhile goes next.
func (c *h2conn) drained() {
	c.mu.Lock()
	if c.handing {
		// The writer handing buffers to the socket goes on itself.
		c.drainedMeanwhile = true
		c.mu.Unlock()
		return
	}
	if !c.writing {
		c.mu.Unlock()
		return
	}
	if c.closed || c.werr != nil || c.queued == 0 {
		c.doneWritingLocked(true)
		return
	}
	c.writeLoop(true)
}

// wake lets the streams that wait for room in the buffer go on.
func (c *h2conn) wake() {
	if c.onWritable != nil {
		var b batch
		c.onWritable(&b)
		b.flush()
	}
}

// flushWait writes out everything buffered, waiting up to flushWaitLimit for the socket
// to take it, before the connection is closed: a GOAWAY must not be lost to a client that
// reads, and a client that does not read must not keep the connection.
func (c *h2conn) flushWait() {
	c.flush(false)
	c.mu.Lock()
	if !c.writing || c.closed {
		c.mu.Unlock()
		return
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	t := time.NewTimer(flushWaitLimit)
	select {
	case <-idle:
	case <-t.C:
	}
	t.Stop()
}

// batch collects the connections a goroutine wrote to, to flush them together once it
// has nothing more to do at once: one write per connection for many frames.
type batch struct{ dirty []*h2conn }

func (b *batch) mark(c *h2conn) {
	for _, d := range b.dirty {
		if d == c {
			return
		}
	}
	b.dirty = append(b.dirty, c)
}

// take removes c from the batch and reports whether it was there.
func (b *batch) take(c *h2conn) bool {
	for i, d := range b.dirty {
		if d == c {
			copy(b.dirty[i:], b.dirty[i+1:])
			b.dirty[len(b.dirty)-1] = nil
			b.dirty = b.dirty[:len(b.dirty)-1]
			return true
		}
	}
	return false
}

func (b *batch) flush() {
	for i := 0; i < len(b.dirty); i++ {
		// Waking streams may mark more connections: the loop takes them too.
		b.dirty[i].flush(true)
	}
	clear(b.dirty)
	b.dirty = b.dirty[:0]
}

// writeHeaders encodes fields and writes HEADERS (and CONTINUATION) frames. c.mu held.
func (c *h2conn) writeHeaders(id uint32, end bool, fields []hpack.HeaderField) {
	block := c.henc.encode(fields)
	max := int(c.peerFrame)
	first := true
	for first || len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		if first {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			_ = c.fr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
}

// giveConnWindowLocked returns what the peer's connection window is owed, if anything
// still is: another goroutine may have given it back meanwhile. c.mu held.
func (c *h2conn) giveConnWindowLocked() {
	if k := c.recvOwed.Swap(0); k > 0 {
		_ = c.fr.WriteWindowUpdate(0, uint32(k))
	}
}

// refreshLocked counts n bytes received on stream id as sent on and gives the windows
// back: each when half of it is owed, and the other one with it if it is owed
// anything, so that both go in one write and wake the peer once. owed is what the
// stream is owed; once the peer ended the stream (ended) its window is not returned.
// It returns the stream window given back. c.mu held.
func (c *h2conn) refreshLocked(id uint32, owed *int64, ended bool, n int64) int64 {
	connOwed := c.recvOwed.Add(n)
	streamDue := false
	if !ended {
		*owed += n
		streamDue = refreshDue(*owed, streamWindow)
	}
	if connOwed > 0 && (streamDue || refreshDue(connOwed, c.connWindow)) {
		c.giveConnWindowLocked()
		streamDue = !ended && *owed > 0
	}
	if !streamDue {
		return 0
	}
	inc := *owed
	_ = c.fr.WriteWindowUpdate(id, uint32(inc))
	*owed = 0
	return inc
}

// close tears the connection down once; streams are told by the caller.
func (c *h2conn) markClosed(err error) (streams []*stream, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	c.closed = true
	c.closeErr = err
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	clear(c.streams)
	c.inFlight.Store(0)
	c.blocked = nil
	c.wbuf, c.sealed, c.queued, c.spare = nil, nil, 0, nil
	_ = c.nc.Close()
	return streams, true
}

// errorDescription is the text for logs of why a connection ended.
func errorDescription(err error) string {
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, io.EOF):
		return "peer closed the connection"
	default:
		return err.Error()
	}
}

func (c *h2conn) String() string { return fmt.Sprintf("%s(%s)", c.name, c.nc.RemoteAddr()) }
