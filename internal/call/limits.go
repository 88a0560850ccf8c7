package call

import "encoding/binary"

// Limits bound the messages one call may carry. They are policy, not memory protection:
// bodies stream through the balancer in flow-controlled chunks whatever their size, so an
// oversized message costs the balancer no more memory than a small one. The limits exist
// so that a client learns at once, from the balancer, that its message is too large,
// instead of after uploading it all to a backend that then refuses it, and so that one
// caller cannot make the backends receive or produce unbounded messages.
type Limits struct {
	// MaxRequestMessageBytes bounds one gRPC request message (its length prefix, so
	// compressed size when compressed), or the whole body of a REST request. 0 means no
	// limit.
	MaxRequestMessageBytes int64
	// MaxResponseMessageBytes bounds one gRPC response message. 0 means no limit. REST
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

// PrefixLen is the length prefix of every gRPC message: a compressed-flag byte and a
// 4-byte big-endian length ("Length-Prefixed-Message" in the gRPC over HTTP/2 spec).
const PrefixLen = 5

// Scanner follows the gRPC length prefixes of one direction of a call as its bytes pass,
// without buffering them, to hold each message to a limit: a 1 GiB insert is refused
// after its first 5 bytes. The zero value is ready. Not safe for concurrent use (one
// direction has one writer).
type Scanner struct {
	have   int
	prefix [PrefixLen]byte
	remain int64
}

// Scan consumes p and reports false as soon as a prefix declares more than max bytes.
func (m *Scanner) Scan(p []byte, max int64) bool {
	for len(p) > 0 {
		if m.remain > 0 {
			k := min(int64(len(p)), m.remain)
			m.remain -= k
			p = p[k:]
			continue
		}
		if m.have == 0 && len(p) >= PrefixLen {
			// The whole prefix is here, as it nearly always is: read in place, without
			// the copy.
			size := int64(binary.BigEndian.Uint32(p[1:PrefixLen]))
			if size > max {
				return false
			}
			m.remain, p = size, p[PrefixLen:]
			continue
		}
		k := copy(m.prefix[m.have:], p)
		m.have += k
		p = p[k:]
		if m.have == PrefixLen {
			m.have = 0
			size := int64(binary.BigEndian.Uint32(m.prefix[1:]))
			if size > max {
				return false
			}
			m.remain = size
		}
	}
	return true
}

// Request checks a request's bytes (p, as they arrive) against the request limit.
func (l Limits) Request(s *Scanner, p []byte) *Failure {
	if max := l.MaxRequestMessageBytes; max > 0 && !s.Scan(p, max) {
		return TooLarge("request", max)
	}
	return nil
}

// Response checks a response's bytes against the response limit.
func (l Limits) Response(s *Scanner, p []byte) *Failure {
	if max := l.MaxResponseMessageBytes; max > 0 && !s.Scan(p, max) {
		return TooLarge("response", max)
	}
	return nil
}
