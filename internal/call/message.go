package call

import "encoding/binary"

// firstMessage gathers the start of the first gRPC message of one direction of a call,
// for the readers that want its first fields (names, consistency level, the reply's
// Status). Protobuf encoders write fields in number order and Milvus messages carry what
// is wanted in their first fields, so a prefix of at most max bytes is enough; a 64 MiB
// insert is never held. When one DATA frame holds what is wanted, nothing is copied.
// Not safe for concurrent use (one direction has one writer).
type firstMessage struct {
	buf  []byte // the prefix and message bytes so far, when they spanned frames
	done bool
}

// add takes the next bytes p of the direction and returns the message bytes seen so far
// (at most max, after the 5-byte length prefix), whether they are all there will be
// (the message is whole, or max bytes of it are here), and ok false while not even the
// length prefix is whole. msg may alias p: it is valid until p is reused.
func (m *firstMessage) add(p []byte, max int) (msg []byte, last, ok bool) {
	if m.done {
		return nil, true, false
	}
	src := p
	if len(m.buf) > 0 || len(p) < PrefixLen {
		m.buf = append(m.buf, p[:min(len(p), PrefixLen+max-len(m.buf))]...)
		src = m.buf
	}
	if len(src) < PrefixLen {
		return nil, false, false
	}
	size := int(min(binary.BigEndian.Uint32(src[1:PrefixLen]), uint32(max)))
	body := src[PrefixLen:]
	if len(body) >= size {
		m.done = true
		return body[:size], true, true
	}
	if len(m.buf) == 0 {
		// Not whole in this frame: keep what is here for the next.
		m.buf = append(make([]byte, 0, PrefixLen+size), src...)
	}
	return body, false, true
}
