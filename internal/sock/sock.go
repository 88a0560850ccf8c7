// Package sock is the socket under the relay's HTTP/2 connections (below TLS when there
// is TLS): writes that never block the goroutine making them, and reads that say when
// they are about to go to the kernel.
//
// Why: the relay's goroutines read one connection and write to others (a client's reader
// writes requests to a shared backend connection; a backend's reader writes responses to
// many clients). A write that blocks because one peer stopped reading would stall every
// call behind that goroutine; a write handed to another goroutine every time costs a
// goroutine wake-up per batch, which on a loaded machine is as dear as the write itself.
// So a Conn in buffered mode writes at once without waiting (a non-blocking write(2)),
// keeps what the kernel did not take in a backlog, and writes the backlog from a goroutine
// of its own only then, bounded by the write timeout. The relay bounds the backlog by not
// writing more while it is there (Pending).
//
// A read that finds nothing to read calls BeforeRead before it waits: the point where
// everything received has been handled, which is when the relay flushes what it batched
// for other connections (one write(2) for all the frames that arrived together, however
// many TLS records and frames they were). While data keeps arriving, small reads (TLS
// asks for a record at a time) are served from one larger read(2) (readAheadSize).
//
// The reads and writes are made on the descriptor as raw system calls, which the Go
// scheduler does not see (raw_linux.go says why); errors are reported as net.Conn's are.
package sock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// Conn wraps a connection. Until Buffer is called it is the connection as it was, with
// blocking writes (TLS handshakes and net/http use it so). Read, Write, Flush and Close may
// be called concurrently: reads by one goroutine at a time, writes by one at a time.
type Conn struct {
	net.Conn
	rc syscall.RawConn // nil: the connection has no file descriptor (net.Pipe in tests)

	// BeforeRead, if set, is called by Read when nothing has arrived, before it waits;
	// it must be set before the reading starts and runs on the reading goroutine.
	BeforeRead func()
	// MayPark, if set, says whether the reader may park now (park.go); it runs on the
	// reading goroutine, when a wait ParkSoon bounded has passed.
	MayPark func() bool

	// The one write in progress (writeFD), its callback made once so that a write
	// allocates nothing.
	writeFn func(fd uintptr) bool
	wp      []byte
	wn      int
	werr    error
	wwait   bool

	// The reading goroutine's read (readFD).
	readFn func(fd uintptr) bool
	rp     []byte
	rn     int
	rerr   error
	ragain bool
	rwait  bool
	// ahead: bytes read ahead of the caller, in aheadBuf (see readAheadSize).
	ahead    []byte
	aheadBuf []byte

	mu       sync.Mutex
	buffered bool
	out      []byte // accepted, not yet written
	inflight int    // bytes the drain goroutine took from out and is writing
	draining bool   // the drain goroutine is writing out
	err      error  // first write error; later writes fail with it
	timeout  time.Duration
	// onDrained is called by the drain goroutine once the backlog is written.
	onDrained func()
	closed    bool

	// Parking (park.go): parked and onReady are guarded by mu, as are fd and watched
	// (the descriptor once known, and whether the epoll set has it); parkArmed (a
	// deadline of ParkSoon's is set) by pmu. parkDue (that deadline passed) is set and
	// cleared by the reading goroutine only (parkDeadline, dueToPark), which asks it
	// before every wait: a round of pmu there was 2.5 lock rounds per Search call.
	// parkWait (ParkSoon's last wait) is guarded by pmu, earlyFrom by mu; parkEarly is
	// the reading goroutine's own, set by the wake-up that starts it (park.go).
	parked    bool
	onReady   func()
	fd        int32
	watched   bool
	earlyFrom time.Time
	parkEarly bool
	pmu       sync.Mutex
	parkArmed bool
	parkDue   bool
	parkWait  time.Duration
}

// New wraps nc. A *net.TCPConn (or anything with SyscallConn) gets non-blocking writes;
// other connections get their backlog written by the drain goroutine every time.
func New(nc net.Conn) *Conn {
	c := &Conn{Conn: nc, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	return c
}

// Find returns the Conn under nc, looking through wrappers that expose what they wrap
// with NetConn (as tls.Conn does), or nil.
func Find(nc net.Conn) *Conn {
	for nc != nil {
		if c, ok := nc.(*Conn); ok {
			return c
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = u.NetConn()
	}
	return nil
}

// Buffer switches c to buffered mode: from now on Write only appends to the backlog and
// Flush writes it. timeout bounds how long the drain goroutine waits for the peer to
// read (zero: no bound); onDrained, if set, is called from the drain goroutine when it has
// written everything.
func (c *Conn) Buffer(timeout time.Duration, onDrained func()) {
	c.mu.Lock()
	c.buffered, c.timeout, c.onDrained = true, timeout, onDrained
	c.mu.Unlock()
}

// Read reads what has arrived; when nothing has, it calls BeforeRead before it waits.
// So the reader handles everything the kernel holds before the hook runs, however many
// reads that takes: the more arrived meanwhile, the larger the batch the hook flushes.
func (c *Conn) Read(p []byte) (int, error) {
	if c.BeforeRead == nil {
		return c.Conn.Read(p)
	}
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		if len(c.ahead) == 0 {
			aheadBufs.Put(c.aheadBuf)
			c.aheadBuf, c.ahead = nil, nil
		}
		return n, nil
	}
	if c.rc == nil || len(p) == 0 {
		c.BeforeRead()
		return c.Conn.Read(p)
	}
	for {
		if len(p) >= readAheadSize {
			if n, err, again := c.readFD(p, false); !again && !c.parkDeadline(err) {
				return n, c.readError(err)
			}
		} else {
			buf := aheadBufs.Get()[:readAheadSize]
			n, err, again := c.readFD(buf, false)
			if !again && !c.parkDeadline(err) {
				k := copy(p, buf[:n])
				if k < n {
					c.aheadBuf, c.ahead = buf, buf[k:n]
				} else {
					aheadBufs.Put(buf)
				}
				return k, c.readError(err)
			}
			aheadBufs.Put(buf)
		}
		c.BeforeRead()
		if c.dueToPark() {
			return 0, ErrParked
		}
		n, err, _ := c.readFD(p, true)
		if !c.parkDeadline(err) {
			return n, c.readError(err)
		}
		// ParkSoon's wait passed: parked at the top if nothing came meanwhile.
	}
}

// dueToPark reports whether the reader, about to wait, is to park instead: ParkSoon's
// wait passed, or the connection parks early (park.go), and MayPark agrees.
func (c *Conn) dueToPark() bool {
	if !c.parkDue && !c.parkEarly {
		return false
	}
	c.parkDue = false
	return c.MayPark != nil && c.MayPark()
}

// readAheadSize is how much a read takes from the kernel at once while data keeps
// arriving: TLS asks for one record (16 KiB) at a time, and a read(2) per record of a
// bulk upload costs more than copying four records out of one. The buffer is held only
// while it has bytes not yet returned: a connection waiting to read holds none.
const readAheadSize = 64 << 10

var aheadBufs = bufs.New(64, readAheadSize)

// readFD reads from the descriptor; when nothing is there it waits for data (and the read
// deadline) if wait is set, else it returns at once with again set. Its errors are bare
// (Read describes them, readError): the deadline ParkSoon sets passes once per call of a
// client that calls less often than that, and is not worth describing. Reading goroutine
// only (the callback is made once, so that a read allocates nothing).
func (c *Conn) readFD(p []byte, wait bool) (n int, err error, again bool) {
	if c.readFn == nil {
		c.readFn = func(fd uintptr) bool {
			for {
				k, e := rawRead(fd, c.rp)
				switch {
				case e == syscall.EINTR:
					continue
				case e == syscall.EAGAIN:
					c.rn, c.rerr, c.ragain = 0, nil, true
					return !c.rwait
				case e != 0:
					c.rn, c.rerr, c.ragain = 0, e, false
				case k == 0:
					c.rn, c.rerr, c.ragain = 0, io.EOF, false
				default:
					c.rn, c.rerr, c.ragain = k, nil, false
				}
				return true
			}
		}
	}
	c.rp, c.rwait = p, wait
	if err := c.rc.Read(c.readFn); err != nil {
		c.rp = nil
		return 0, err, false
	}
	c.rp = nil
	return c.rn, c.rerr, c.ragain
}

// readError describes a failed read as net.Conn does; io.EOF stays as it is.
func (c *Conn) readError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return c.opError("read", err)
}

// opError describes a failed read or write as net.Conn does (with the addresses), since
// the descriptor's errors come bare.
func (c *Conn) opError(op string, err error) error {
	if e, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, e)
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Write writes p; in buffered mode it appends p to the backlog for Flush and never blocks.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.buffered {
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.out = append(c.out, p...)
	return len(p), nil
}

// WriteNow is Write followed by Flush, without copying p when the kernel takes it all.
// Buffered mode only.
func (c *Conn) WriteNow(p []byte) (pending int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.pendingLocked(), c.err
	}
	if len(c.out) == 0 && !c.draining {
		n := c.tryWriteLocked(p)
		p = p[n:]
		if c.err != nil || len(p) == 0 {
			return 0, c.err
		}
	}
	c.appendOutLocked(p)
	c.startDrainLocked()
	return c.pendingLocked(), nil
}

// smallBacklog: a backlog buffer up to this size stays with its connection for the
// next backlog; a larger one does not (an idle connection keeps no large buffer).
const smallBacklog = 64 << 10

// backlogSize is the capacity of the kept backlog buffers (backlogs).
const backlogSize = 512 << 10

// backlogs keep the buffers of large backlogs: the rest of a write the kernel did not
// take, while a peer reads slower than the relay writes (uploads to a busy backend).
// Copied into buffers of their own and left to the collector, they came and went
// faster than it collected them: with writes of up to 256 KiB the big-insert workload
// peaked at 1.18x the resident set of 64 KiB writes, and with these at 0.98x.
var backlogs = bufs.New(16, backlogSize)

// appendOutLocked adds p to the backlog. A backlog that starts larger than
// smallBacklog starts in a kept buffer; a buffer the backlog outgrows is let go (back
// to backlogs if it is one of theirs).
func (c *Conn) appendOutLocked(p []byte) {
	old := c.out
	switch {
	case len(old)+len(p) <= cap(old):
		c.out = append(old, p...)
		return
	case len(old) == 0 && len(p) > smallBacklog && len(p) <= backlogSize:
		c.out = append(backlogs.Get(), p...)
	default:
		c.out = append(old, p...)
	}
	dropBuf(old)
}

// dropBuf lets go of a written backlog buffer: back to backlogs if it is one of theirs.
func dropBuf(b []byte) {
	if cap(b) == backlogSize {
		backlogs.Put(b)
	}
}

// Flush writes as much of the backlog as the kernel takes now; the rest is written by the
// drain goroutine. It returns the bytes still waiting and the first write error.
func (c *Conn) Flush() (pending int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || len(c.out) == 0 || c.draining {
		return c.pendingLocked(), c.err
	}
	n := c.tryWriteLocked(c.out)
	c.consumeLocked(n)
	if c.err == nil && len(c.out) > 0 {
		c.startDrainLocked()
	}
	return c.pendingLocked(), c.err
}

// Pending is the number of bytes in the backlog.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingLocked()
}

func (c *Conn) pendingLocked() int { return len(c.out) + c.inflight }

// Close writes what it can of the backlog without waiting (a TLS close_notify, a GOAWAY)
// and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if !c.closed && c.err == nil && len(c.out) > 0 && !c.draining {
		c.consumeLocked(c.tryWriteLocked(c.out))
	}
	c.closed = true
	unwatch(c)
	wake := c.unparkLocked()
	c.mu.Unlock()
	err := c.Conn.Close()
	if wake != nil {
		// The parked reader reads on, finds the connection closed and ends it.
		go wake()
	}
	return err
}

// tryWriteLocked writes p without waiting and returns how much the kernel took. c.mu held.
func (c *Conn) tryWriteLocked(p []byte) int {
	if c.rc == nil {
		return 0 // no descriptor: the drain goroutine writes, blocking
	}
	n, err := c.writeFD(p, false)
	if err != nil {
		c.err = err
	}
	return n
}

// writeFD writes p to the descriptor; on a full socket it waits for room (and the write
// deadline) if wait is set, else it returns what was written so far. One write at a time:
// under c.mu, or from the drain goroutine while draining keeps the others off.
func (c *Conn) writeFD(p []byte, wait bool) (int, error) {
	if c.writeFn == nil {
		c.writeFn = func(fd uintptr) bool {
			for c.wn < len(c.wp) {
				k, e := rawWrite(fd, c.wp[c.wn:])
				if k > 0 {
					c.wn += k
				}
				switch {
				case e == syscall.EINTR:
					continue
				case e == syscall.EAGAIN:
					return !c.wwait
				case e != 0:
					c.werr = e
					return true
				case k == 0:
					c.werr = io.ErrShortWrite
					return true
				}
			}
			return true
		}
	}
	c.wp, c.wn, c.werr, c.wwait = p, 0, nil, wait
	err := c.rc.Write(c.writeFn)
	if err == nil {
		err = c.werr
	}
	n := c.wn
	c.wp, c.werr = nil, nil
	if err != nil && err != io.ErrShortWrite {
		err = c.opError("write", err)
	}
	return n, err
}

func (c *Conn) consumeLocked(n int) {
	if n == len(c.out) {
		c.out = c.out[:0]
		if cap(c.out) > smallBacklog {
			dropBuf(c.out)
			c.out = nil // an idle connection keeps no large buffer
		}
		return
	}
	c.out = c.out[:copy(c.out, c.out[n:])]
}

func (c *Conn) startDrainLocked() {
	if c.draining || c.err != nil {
		return
	}
	c.draining = true
	go c.drain()
}

// drain writes the backlog out, waiting for the peer as long as the timeout allows, and
// tells onDrained when it is done. A write error (the timeout among them) closes the
// connection: its reader then ends it.
func (c *Conn) drain() {
	c.mu.Lock()
	for len(c.out) > 0 && c.err == nil {
		buf := c.out
		c.out, c.inflight = nil, len(buf)
		c.mu.Unlock()
		if c.timeout > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		n, err := c.writeBlocking(buf)
		c.mu.Lock()
		c.inflight = 0
		if err != nil && c.err == nil {
			c.err = err
		}
		switch {
		case n < len(buf): // only after an error: keep the order all the same
			c.out = append(buf[n:], c.out...)
		case len(c.out) == 0 && cap(buf) <= smallBacklog:
			c.out = buf[:0] // keep the buffer for the next backlog
		default:
			dropBuf(buf)
		}
	}
	if c.timeout > 0 && c.err == nil {
		// A deadline left behind would fail the next write once it passed, however fast.
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	c.draining = false
	err, done := c.err, c.onDrained
	c.mu.Unlock()
	if err != nil {
		_ = c.Conn.Close()
		return
	}
	if done != nil {
		done()
	}
}

// writeBlocking writes p, waiting for the peer to read.
func (c *Conn) writeBlocking(p []byte) (int, error) {
	if c.rc == nil {
		return c.Conn.Write(p)
	}
	return c.writeFD(p, true)
}
