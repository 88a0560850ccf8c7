// Package accesslog writes one line per call, from the call's record, off the request path:
// Observe copies the record into a bounded queue and returns; a writer goroutine encodes
// and writes the lines through a buffer. When the queue is full the line is dropped and
// counted: a call never waits for its log line.
package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"
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
	// QueueLen is how many records may wait for the writer: a burst of this many calls
	// beyond what the writer keeps up with is logged, more is dropped and counted.
	QueueLen = 4096
	// flushDelay bounds how long a line waits in the buffer when calls are few; under
	// load lines go out as the 64 KiB buffer fills, one write for hundreds of lines.
	flushDelay = 100 * time.Millisecond
)

// Logger is an access log. Observe may be called concurrently from any goroutine; a nil
// *Logger (the log is off) observes nothing.
type Logger struct {
	q      chan call.Record
	format Format
	out    io.Writer
	file   *os.File // closed by Close; nil for standard output

	dropped atomic.Uint64 // the queue was full
	failed  atomic.Uint64 // lost to write errors
	written atomic.Uint64

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	err       error // the first write error, for Close
}

// Open opens the access log named by spec: "off" (nil Logger), "stdout" (the default,
// spelt "" too), "stderr", or a file path, created if need be and appended to. A path
// that cannot be opened is an error naming it.
func Open(spec string, f Format) (*Logger, error) {
	switch spec {
	case "off":
		return nil, nil
	case "", "stdout":
		return New(os.Stdout, f, QueueLen), nil
	case "stderr":
		return New(os.Stderr, f, QueueLen), nil
	}
	file, err := os.OpenFile(spec, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l := New(file, f, QueueLen)
	l.file = file
	return l, nil
}

// New starts a Logger writing to w with a queue of queueLen records.
func New(w io.Writer, f Format, queueLen int) *Logger {
	l := &Logger{q: make(chan call.Record, queueLen), format: f, out: w,
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// Observe implements call.Observer: it queues a copy of r for the writer, or drops it when
// the queue is full. The record's strings are kept until the line is written.
func (l *Logger) Observe(r *call.Record) {
	if l == nil {
		return
	}
	select {
	case l.q <- *r:
	default:
		l.dropped.Add(1)
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

// Close writes the lines queued so far, flushes and closes the file. Records observed
// after Close are not written. It returns the first write error, if any.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	var err error
	if l.file != nil {
		err = l.file.Close()
	}
	return errors.Join(l.err, err)
}

// run is the writer: it encodes records as they come and flushes when the buffer fills,
// flushDelay after the first line of a quiet moment, and at Close.
func (l *Logger) run() {
	defer close(l.done)
	w := writer{out: l.out, l: l}
	w.bw = bufio.NewWriterSize(l.out, 64<<10)
	timer := time.NewTimer(flushDelay)
	timer.Stop()
	for {
		select {
		case r := <-l.q:
			if w.lines == 0 {
				timer.Reset(flushDelay)
			}
			w.write(&r)
		case <-timer.C:
			w.flush()
		case <-l.stop:
			for {
				select {
				case r := <-l.q:
					w.write(&r)
				default:
					w.flush()
					return
				}
			}
		}
	}
}

// writer is the writer goroutine's state.
type writer struct {
	l     *Logger
	out   io.Writer
	bw    *bufio.Writer
	line  []byte
	enc   encoder
	lines uint64 // lines in the buffer, not yet flushed
}

func (w *writer) write(r *call.Record) {
	w.line = w.enc.record(w.line[:0], r, w.l.format)
	if _, err := w.bw.Write(w.line); err != nil {
		w.lost(err, w.lines+1)
		return
	}
	w.lines++
}

func (w *writer) flush() {
	if err := w.bw.Flush(); err != nil {
		w.lost(err, w.lines)
		return
	}
	w.l.written.Add(w.lines)
	w.lines = 0
}

// lost counts n lines as failed and starts a clean buffer: bufio.Writer keeps its first
// error forever, and a full disk may have room again later.
func (w *writer) lost(err error, n uint64) {
	if w.l.err == nil {
		w.l.err = err
	}
	w.l.failed.Add(n)
	w.lines = 0
	w.bw.Reset(w.out)
}
