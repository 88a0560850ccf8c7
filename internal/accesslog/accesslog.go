// Package accesslog writes one line per call, from the call's record, off the request path:
// Observe encodes the line into a bounded queue of buffers and returns; a writer goroutine
// writes the buffers. When the queue is full the line is dropped and counted: a
// call never waits for its log line.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/sock"
)

// Format is how lines are written.
type Format uint8

const (
	JSON Format = iota // one JSON object per line (the default)
	Text               // key=value pairs, logfmt style
)

// ParseFormat reads a --access-log-format value.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json", "":
		return JSON, nil
	case "text":
		return Text, nil
	}
	return 0, fmt.Errorf("access log format %q: want json or text", s)
}

func (f Format) String() string {
	if f == Text {
		return "text"
	}
	return "json"
}

const (
	// QueueLen is how many lines may wait for the writer: a burst of this many calls
	// beyond what the writer keeps up with is logged, more is dropped and counted.
	QueueLen = 4096
	// chunkSize is the size of the buffers lines are gathered in: the writer writes one
	// buffer at a time, one write for about a hundred lines.
	chunkSize = 64 << 10
	// flushDelay bounds how long a line waits in a buffer when calls are few; under
	// load buffers go out as they fill.
	flushDelay = 100 * time.Millisecond
	// keepFree is how many written buffers are kept for reuse.
	keepFree = 4
	// lineRoom is the room a chunk must have left for a line to be encoded into it: a
	// line with every field at its longest is about 2 KiB. A longer line (a client's
	// very long authority) grows the chunk, which is then not kept for reuse.
	lineRoom = 4 << 10
)

// Logger is an access log. Observe may be called concurrently from any goroutine; a nil
// *Logger (the log is off) observes nothing.
//
// A call encodes its line itself, under a lock, straight into the chunk being filled: no
// copy of the record is queued (which the garbage collector would scan, and the writer
// goroutine would have to be woken for, once per call), and no line is copied. Full
// chunks go to the writer, which wakes once per chunk or flushDelay.
type Logger struct {
	format Format
	out    io.Writer
	// closers are closed by Close: the file Open opened, and what sock.FileWriter opened.
	closers []io.Closer
	limit   int // lines that may wait for the writer

	mu      sync.Mutex
	enc     encoder      // under mu
	cur     *chunk       // being filled; nil when none
	full    []*chunk     // for the writer, oldest first
	pending atomic.Int64 // lines in cur and full; changed under mu
	closed  bool         // Close was called: lines are no longer taken

	wake chan struct{} // cap 1: a full chunk, cur's first line, or Close
	// free holds written chunks for reuse (cap keepFree): a channel, so that the writer
	// gives them back without waiting for mu, which callers hold while they encode.
	free chan *chunk

	dropped atomic.Uint64 // the queue was full
	failed  atomic.Uint64 // lost to write errors
	written atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	err       error // the first write error and the closers' errors, for Close
}

// chunk is a buffer of whole lines.
type chunk struct {
	b     []byte
	lines int
}

// Open opens the access log named by spec: "off" (nil Logger), "stdout" (the default,
// spelt "" too), "stderr", or a file path, created if need be and appended to. A path
// that cannot be opened is an error naming it.
func Open(spec string, f Format) (*Logger, error) {
	file := os.Stdout
	switch spec {
	case "off":
		return nil, nil
	case "", "stdout":
	case "stderr":
		file = os.Stderr
	default:
		var err error
		if file, err = os.OpenFile(spec, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
	}
	w, own := sock.FileWriter(file)
	l := New(w, f, QueueLen)
	l.closers = []io.Closer{own}
	if file != os.Stdout && file != os.Stderr {
		l.closers = append(l.closers, file)
	}
	return l, nil
}

// New starts a Logger writing to w, with at most queueLen lines waiting for the writer.
func New(w io.Writer, f Format, queueLen int) *Logger {
	l := &Logger{format: f, out: w, limit: queueLen, wake: make(chan struct{}, 1), free: make(chan *chunk, keepFree), done: make(chan struct{})}
	go l.run()
	return l
}

// RecordFields implements call.FieldsObserver: a line has every field; a nil Logger (the
// log is off) reads none.
func (l *Logger) RecordFields() milvus.Fields {
	if l == nil {
		return 0
	}
	return milvus.AllFields
}

// Observe implements call.Observer: it encodes r's line into the queue for the writer, or
// drops it when the queue is full. Nothing of r is kept.
func (l *Logger) Observe(r *call.Record) {
	if l == nil {
		return
	}
	if l.pending.Load() >= int64(l.limit) {
		l.dropped.Add(1) // full: not worth the lock (appendLocked decides under it)
		return
	}
	l.mu.Lock()
	wake := l.appendLocked(r)
	l.mu.Unlock()
	if wake {
		select {
		case l.wake <- struct{}{}:
		default: // the writer has a wake-up pending already
		}
	}
}

// appendLocked adds r's line to the chunk being filled and reports whether the writer must
// be woken: a chunk is full, or this is the first line of a chunk (its flushDelay starts).
func (l *Logger) appendLocked(r *call.Record) (wake bool) {
	if l.closed || l.pending.Load() >= int64(l.limit) {
		l.dropped.Add(1)
		return false
	}
	if l.cur != nil && cap(l.cur.b)-len(l.cur.b) < lineRoom {
		l.full = append(l.full, l.cur)
		l.cur, wake = nil, true
	}
	if l.cur == nil {
		l.cur = l.newChunkLocked()
	}
	l.cur.b = l.enc.record(l.cur.b, r, l.format)
	l.cur.lines++
	l.pending.Add(1)
	return wake || l.cur.lines == 1
}

func (l *Logger) newChunkLocked() *chunk {
	select {
	case c := <-l.free:
		return c
	default:
		return &chunk{b: make([]byte, 0, chunkSize)}
	}
}

// Stats are the log's counters.
type Stats struct {
	Written     uint64 // lines written
	Dropped     uint64 // lines dropped because the queue was full
	WriteFailed uint64 // lines lost to write errors
}

// Stats returns the counters (zero for a nil Logger).
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), WriteFailed: l.failed.Load()}
}

// Close writes the lines queued so far and closes the file. Records observed after Close
// are not written. It returns the first write error, if any.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	})
	<-l.done
	return l.err
}

// run is the writer: it writes full chunks as they come, the chunk being filled
// flushDelay after its first line, and everything at Close.
func (l *Logger) run() {
	defer close(l.done)
	timer := time.NewTimer(flushDelay)
	timer.Stop()
	armed := false // the timer runs for a chunk's first line
	for {
		select {
		case <-l.wake:
		case <-timer.C:
			armed = false
			l.mu.Lock()
			if l.cur != nil {
				l.full = append(l.full, l.cur)
				l.cur = nil
			}
			l.mu.Unlock()
		}
		batch, first, closed := l.take()
		if first && !armed {
			timer.Reset(flushDelay)
			armed = true
		}
		for _, c := range batch {
			l.write(c)
		}
		if closed {
			for _, c := range l.closers {
				l.err = errors.Join(l.err, c.Close())
			}
			return
		}
	}
}

// take returns the chunks to write (all of them once Close was called), whether cur
// has lines (its flushDelay must run), and whether the log is closed.
func (l *Logger) take() (batch []*chunk, first, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed && l.cur != nil {
		l.full = append(l.full, l.cur)
		l.cur = nil
	}
	batch, l.full = l.full, nil
	for _, c := range batch {
		l.pending.Add(-int64(c.lines))
	}
	first = l.cur != nil && l.cur.lines > 0
	return batch, first, l.closed
}

// write writes one chunk and gives it back for reuse.
func (l *Logger) write(c *chunk) {
	if _, err := l.out.Write(c.b); err != nil {
		if l.err == nil {
			l.err = err
		}
		l.failed.Add(uint64(c.lines))
	} else {
		l.written.Add(uint64(c.lines))
	}
	c.b, c.lines = c.b[:0], 0
	if cap(c.b) != chunkSize {
		return // grown by a long line
	}
	select {
	case l.free <- c:
	default: // keepFree are kept already
	}
}
