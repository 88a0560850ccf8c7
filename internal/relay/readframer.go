package relay

import (
	"io"

	"golang.org/x/net/http2"

	"github.com/milvus-lb/milvus-lb/internal/bufs"
)

// A client connection reads its frames with a Framer lent from readFramers while its
// reader runs, and gives it back when it parks (park.go). It writes with a Framer of its
// own (h2conn.fr), which never reads and writes only control frames and header blocks
// (DATA goes into the write buffer directly, appendData), so that Framer's own buffer
// stays the size of a header block. x/net's Framer reads each payload into a buffer it
// keeps, the size of the largest frame it read (a Search request's 3 KiB, up to 16 KiB),
// and caches the frames it parsed. A parked connection that kept its Framer would hold
// that buffer; one that made a new Framer each time it resumed allocated the buffer
// again for its first frame: 2,000 clients making a Search a second each allocated
// 2.5 KB per call that way, more than half of all they allocated (docs/benchmarks.md,
// "Many clients, fifth round"). A lent Framer is used by one reader at a time.
type readFramer struct {
	fr  *http2.Framer
	src io.Reader // the frames' source while lent: the connection's frameReader
	// failed: a read returned an error other than a park. After a stream error the
	// connection reads on, and the Framer may be inside a header block (x/net's frame
	// order check remembers the stream whose CONTINUATION is due): such a Framer is not
	// given back, or the next connection's first frame would break that check.
	failed bool
}

func (r *readFramer) Read(p []byte) (int, error) { return r.src.Read(p) }

// readFramers keeps the Framers of parked connections. A connection that resumes takes
// one; as many readers run at once as connections have bytes to read, a few hundred at
// most in steady use. A burst of parks (10,000 connections made at once, each with a
// call) gives back more than that: the bound, and bufs' trim of what goes unused, keep
// them from holding a Framer each (a sync.Pool would keep them until two collections
// passed, which an idle balancer may not make for minutes).
var readFramers = bufs.NewFree(256, func() *readFramer {
	r := &readFramer{}
	// No writer: writing with a lent Framer is a bug, and panics.
	r.fr = http2.NewFramer(nil, r)
	// DATA frames are copied out before the next read (as newH2conn's).
	r.fr.SetReuseFrames()
	// The relay does not advertise SETTINGS_MAX_FRAME_SIZE: a client's frames are at most
	// 16 KiB, which bounds the buffer of every lent Framer.
	r.fr.SetMaxReadFrameSize(defaultFrame)
	return r
})

// lendReadFramer lends c's reader a Framer over c.br, with the connection's header list
// limit (0: none). Reader goroutine.
func (c *h2conn) lendReadFramer(maxHeaderBytes int) {
	r := readFramers.Get()
	r.src, r.failed = c.br, false
	r.fr.MaxHeaderListSize = uint32(max(maxHeaderBytes, 0))
	c.lent = r
}

// giveBackReadFramer ends the loan when the connection parks: at a frame boundary,
// between header blocks (a block is read whole, CONTINUATION frames included, before
// its frame is handled), so the Framer holds nothing of c's but the last payload's
// buffer, which nothing refers to any more. A Framer that failed is dropped. Reader
// goroutine.
func (c *h2conn) giveBackReadFramer() {
	if c.lent != nil && !c.lent.failed {
		c.lent.src = nil
		readFramers.Put(c.lent)
	}
	c.lent = nil
}
