package relay

import (
	"io"
	"sync"

	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// frameReader is the buffer under a connection's Framer, in place of a bufio.Reader, for
// two things an idle connection needs (park.go):
//
//   - A frame header is read whole or not at all (header set by the reader loop): a read
//     that parks (sock.ErrParked) while part of a header has arrived keeps that part
//     here, where the Framer would have lost it with the error.
//   - The buffer is taken from a pool when bytes are to be read and given back when the
//     connection parks with nothing in it: a parked connection holds none.
type frameReader struct {
	src  io.Reader
	pool *sync.Pool // of *[]byte of size bytes
	size int
	buf  *[]byte
	r, w int
	err  error // the source's error after the bytes it came with
	// header says that the next read is a frame header, which the reader loop may park
	// in (headerRead).
	header bool
}

// readPools hold the read buffers of the sizes connections use, by size.
var readPools sync.Map // int → *sync.Pool

func newFrameReader(src io.Reader, size int) *frameReader {
	p, ok := readPools.Load(size)
	if !ok {
		p, _ = readPools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	}
	return &frameReader{src: src, pool: p.(*sync.Pool), size: size}
}

// Read serves p from the buffer, filling it from the source when it is empty; a large p
// is read into directly when nothing is buffered.
func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.header {
		return fr.headerRead(p)
	}
	if fr.r == fr.w {
		if fr.err != nil {
			return 0, fr.takeErr()
		}
		if len(p) >= fr.size {
			return fr.src.Read(p)
		}
		if err := fr.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*fr.buf)[fr.r:fr.w])
	fr.r += n
	return n, nil
}

// headerRead returns len(p) bytes (a frame header fits the buffer), or an error with
// whatever arrived kept for the next read.
func (fr *frameReader) headerRead(p []byte) (int, error) {
	for fr.w-fr.r < len(p) {
		if fr.err != nil {
			return 0, fr.takeErr()
		}
		if err := fr.fill(); err != nil {
			return 0, err
		}
	}
	fr.header = false
	n := copy(p, (*fr.buf)[fr.r:fr.w])
	fr.r += n
	return n, nil
}

// fill reads once from the source after what the buffer holds. An error that comes with
// bytes is kept for the read after them, but for sock.ErrParked: crypto/tls returns it
// with bytes when it looked for a close_notify after them, and a park returned to the
// read of a payload would lose the part of it read so far; the next wait parks anew.
func (fr *frameReader) fill() error {
	if fr.buf == nil {
		fr.buf = fr.pool.Get().(*[]byte)
	}
	b := *fr.buf
	if fr.r > 0 {
		fr.w = copy(b, b[fr.r:fr.w])
		fr.r = 0
	}
	n, err := fr.src.Read(b[fr.w:])
	fr.w += n
	if n > 0 {
		if err != sock.ErrParked {
			fr.err = err
		}
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (fr *frameReader) takeErr() error {
	err := fr.err
	fr.err = nil
	return err
}

// release gives the buffer back to the pool if it holds nothing.
func (fr *frameReader) release() {
	if fr.buf != nil && fr.r == fr.w {
		fr.pool.Put(fr.buf)
		fr.buf, fr.r, fr.w = nil, 0, 0
	}
}
