package milvus

import "encoding/binary"

// framing finds the first message of a gRPC stream in its DATA bytes: a 5-byte prefix (a
// compressed flag and a big-endian length), then the message. A message the client
// compressed cannot be read without inflating it, which the balancer does not do (no
// Milvus client compresses by default); the scanners then learn nothing from it.
type framing struct {
	pre  [5]byte
	n    int   // prefix bytes seen
	left int64 // bytes of the message not yet given
}

// message returns the bytes of the first message in the next piece p of the stream. It
// starts w on the message once the prefix is complete (started is true from then on);
// ok is false for a compressed message.
func (f *framing) message(p []byte, w *walker) (msg []byte, started, ok bool) {
	if f.n < len(f.pre) {
		k := copy(f.pre[f.n:], p)
		f.n, p = f.n+k, p[k:]
		if f.n < len(f.pre) {
			return nil, false, true
		}
		if f.pre[0] != 0 {
			return nil, true, false
		}
		f.left = int64(binary.BigEndian.Uint32(f.pre[1:]))
		w.reset(f.left)
	}
	k := min(int64(len(p)), f.left)
	f.left -= k
	return p[:k], true, true
}

// size is the length of the first message, once its prefix was read.
func (f *framing) size() (int64, bool) {
	if f.n < len(f.pre) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint32(f.pre[1:])), true
}

// scan is what both scanners share: the framing, the walker, and whether they are done.
type scan struct {
	done bool
	fr   framing
	w    walker
}

// reset makes c as new, but for the walker's value buffer (walker).
func (c *scan) reset() {
	c.done, c.fr = false, framing{}
	c.w.walkState = walkState{}
}

// input returns the bytes of the first message in the next piece p of the stream; ok is
// false when there is nothing to read in it.
func (c *scan) input(p []byte) (msg []byte, ok bool) {
	if c.done {
		return nil, false
	}
	msg, started, ok := c.fr.message(p, &c.w)
	if !ok {
		c.done = true
	}
	return msg, ok && started
}

// unframed starts the walker on a message given without framing: whole, or its first
// bytes. It returns false when there is nothing to read.
func (c *scan) unframed(msg []byte, whole bool) bool {
	if c.done {
		return false
	}
	end := int64(-1)
	if whole {
		end = int64(len(msg))
	}
	c.w.reset(end)
	return true
}
