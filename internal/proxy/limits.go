package proxy

import (
	"encoding/binary"
	"io"
	"strconv"

	"google.golang.org/grpc/codes"
)

// Limits bound the messages one call may carry. They are policy, not memory protection:
// bodies stream through the balancer in flow-controlled chunks whatever their size, so an
// oversized message costs the balancer no more memory than a small one. The limits exist
// so that a client learns at once, from the balancer, that its message is too large,
// instead of after uploading it all to a backend that then refuses it, and so that one
// caller cannot make the backends receive or produce unbounded messages.
type Limits struct {
	// MaxRequestMessageBytes bounds one gRPC request message (its length prefix, so
	// compressed size when compressed), or the whole body of any other request. 0 means
	// no limit.
	MaxRequestMessageBytes int64
	// MaxResponseMessageBytes bounds one gRPC response message. 0 means no limit. Other
	// responses are not limited: they stream, and the client chose to ask for them.
	MaxResponseMessageBytes int64
}

// DefaultLimits are 256 MiB each way. Milvus itself accepts 64 MiB requests by default
// (proxy.grpc.serverMaxRecvSize, which operators raise for bulk inserts) and sends up to
// 256 MiB (serverMaxSendSize); the balancer should not be the component that refuses a
// message the backend was configured to take, so both defaults sit at Milvus's largest.
func DefaultLimits() Limits {
	return Limits{MaxRequestMessageBytes: 256 << 20, MaxResponseMessageBytes: 256 << 20}
}

// grpcPrefixLen is the length prefix of every gRPC message: a compressed-flag byte and a
// 4-byte big-endian length ("Length-Prefixed-Message" in the gRPC over HTTP/2 spec).
const grpcPrefixLen = 5

// messageLimiter passes a stream of gRPC messages through and fails as soon as a message
// prefix declares more than max bytes, before one byte of that message is passed on: a
// 1 GiB insert is refused after its first 5 bytes, not after 256 MiB. It never passes on
// part of a prefix, so a stream cut by the limit ends on a message boundary and the peer
// sees the balancer's status, not a framing error. Not safe for concurrent use (a body
// has one reader).
type messageLimiter struct {
	r    io.Reader
	max  int64
	what string // "request" or "response", for the message

	prefix [grpcPrefixLen]byte
	have   int   // bytes of the current prefix read from r
	out    int   // bytes of the current prefix passed on (once it is whole and checked)
	remain int64 // payload bytes of the current message not yet read
	err    *failure
	end    error // r ended inside a prefix: pass prefix[out:have] on, then end
}

func (l *messageLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.end != nil {
		c := copy(p, l.prefix[l.out:l.have])
		l.out += c
		if l.out < l.have {
			return c, nil
		}
		return c, l.end
	}
	n := 0
	for n < len(p) {
		if l.have == grpcPrefixLen && l.out < grpcPrefixLen {
			c := copy(p[n:], l.prefix[l.out:])
			l.out += c
			n += c
			continue
		}
		if l.remain > 0 {
			q := p[n:]
			if int64(len(q)) > l.remain {
				q = q[:l.remain]
			}
			m, err := l.r.Read(q)
			l.remain -= int64(m)
			return n + m, err
		}
		// At a message boundary.
		if l.have == grpcPrefixLen {
			l.have, l.out = 0, 0
		}
		if n > 0 {
			// Hand over what there is rather than block for the next message.
			return n, nil
		}
		m, err := l.r.Read(l.prefix[l.have:])
		l.have += m
		if l.have < grpcPrefixLen {
			if err != nil {
				// The stream ended inside a prefix (or cleanly, with none): pass what
				// there is on; judging a malformed stream is the receiver's business.
				l.end, l.out = err, 0
				return l.Read(p)
			}
			continue
		}
		size := int64(binary.BigEndian.Uint32(l.prefix[1:]))
		if l.max > 0 && size > l.max {
			l.err = tooLarge(l.what, l.max)
			return 0, l.err
		}
		l.remain = size
		if err != nil {
			l.end, l.out = err, 0
			return l.Read(p)
		}
	}
	return n, nil
}

func (l *messageLimiter) Close() error {
	if c, ok := l.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// bodyLimiter fails a non-gRPC body once it exceeds max bytes in total.
type bodyLimiter struct {
	r    io.ReadCloser
	max  int64
	read int64
	err  *failure
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
		l.err = tooLarge("request", l.max)
		return 0, l.err
	}
	return n, err
}

func (l *bodyLimiter) Close() error { return l.r.Close() }

// tooLarge is the failure for a message over its limit: RESOURCE_EXHAUSTED, the code
// grpc-go itself uses for "received message larger than max" (and, for REST, 413).
func tooLarge(what string, max int64) *failure {
	return &failure{code: codes.ResourceExhausted, msg: what + " message larger than " + formatBytes(max)}
}

// limitRequest wraps a request body in the request limit. It returns the failure at once
// when a REST request declares a Content-Length over the limit.
func (l Limits) limitRequest(body io.ReadCloser, contentLength int64, isGRPC bool) (io.ReadCloser, *failure) {
	max := l.MaxRequestMessageBytes
	if max <= 0 || body == nil {
		return body, nil
	}
	if isGRPC {
		return &messageLimiter{r: body, max: max, what: "request"}, nil
	}
	if contentLength > max {
		return nil, tooLarge("request", max)
	}
	return &bodyLimiter{r: body, max: max}, nil
}

// limitResponse wraps a gRPC response body in the response limit.
func (l Limits) limitResponse(body io.ReadCloser, isGRPC bool) io.ReadCloser {
	if max := l.MaxResponseMessageBytes; isGRPC && max > 0 {
		return &messageLimiter{r: body, max: max, what: "response"}
	}
	return body
}

// limitFailure returns the failure of the request limiter under body, if it tripped. A
// tripped limit may reach the forwarding code as some other error (the backend stream
// reset because the request body failed), and the client must still learn the cause.
func limitFailure(body io.Reader) *failure {
	if g, ok := body.(*replayGuard); ok {
		body = g.ReadCloser
	}
	switch l := body.(type) {
	case *messageLimiter:
		return l.err
	case *bodyLimiter:
		return l.err
	}
	return nil
}

// formatBytes writes n in the largest binary unit that divides it exactly, as the flags
// take it ("256MiB"), else in bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
