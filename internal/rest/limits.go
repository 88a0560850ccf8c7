package rest

import (
	"io"
	"sync/atomic"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// bodyLimiter fails a REST request body once it exceeds max bytes in total. Not safe for
// concurrent use (a body has one reader).
type bodyLimiter struct {
	r    io.ReadCloser
	max  int64
	read int64
	err  *call.Failure
}

func (l *bodyLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if rest := l.max - l.read + 1; int64(len(p)) > rest {
		// Read one byte past the limit at most: enough to know it was crossed.
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.max {
		l.err = call.TooLarge("request", l.max)
		return 0, l.err
	}
	return n, err
}

func (l *bodyLimiter) Close() error { return l.r.Close() }

// limitBody wraps a request body in the request limit, or fails at once when the
// request declares a Content-Length over it.
func limitBody(l call.Limits, body io.ReadCloser, contentLength int64) (io.ReadCloser, *call.Failure) {
	max := l.MaxRequestMessageBytes
	if max <= 0 || body == nil {
		return body, nil
	}
	if contentLength > max {
		return nil, call.TooLarge("request", max)
	}
	return &bodyLimiter{r: body, max: max}, nil
}

// replayGuard remembers whether the request body was read, so a request whose body was
// never touched may go to another endpoint, and keeps the limiter's failure findable
// whatever error it reaches the forwarding code as. Close is a no-op: the server owns
// the body.
type replayGuard struct {
	io.ReadCloser
	call *call.Call // reads the names at the start of the body, while it wants more
	want bool
	read bool
	// n is the bytes read, the record's request_bytes. Atomic: the transport may still be
	// sending the body from its own goroutine when the backend's answer ends the call.
	n atomic.Int64
}

func (g *replayGuard) Read(p []byte) (int, error) {
	g.read = true
	n, err := g.ReadCloser.Read(p)
	g.n.Add(int64(n))
	if g.want && n > 0 {
		g.want = g.call.Request(p[:n])
	}
	return n, err
}

func (g *replayGuard) Close() error { return nil }

// limitFailure returns the failure of the body limiter under g, if it tripped: a
// tripped limit may reach the forwarding code as some other error (the backend
// connection failed because the request body did), and the client must learn the cause.
func (g *replayGuard) limitFailure() *call.Failure {
	if l, ok := g.ReadCloser.(*bodyLimiter); ok && l.err != nil {
		return l.err
	}
	return nil
}
