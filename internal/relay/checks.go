package relay

import (
	"strconv"
)

// maxWindow is the largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const maxWindow = 1<<31 - 1

// checkRequest validates a request's header block beyond what the Framer checks (field
// names, pseudo-header order, duplicates and kinds): the pseudo-header fields a request
// must carry (RFC 9113 §8.3.1), connection-specific fields (§8.2.2), and content-length.
// It returns the declared content-length (-1 without one) and whether the request is
// well-formed; a malformed request is answered with RST_STREAM(PROTOCOL_ERROR) (§8.1.1).
func checkRequest(f *headerBlock) (contentLength int64, ok bool) {
	contentLength = -1
	var method, scheme, path bool
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value != ""
		case ":scheme":
			scheme = hf.Value != ""
		case ":path":
			path = hf.Value != ""
		case ":status":
			return -1, false // a response pseudo-header in a request
		}
	}
	if !method || !scheme || !path {
		return -1, false
	}
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return -1, false
		case "te":
			if hf.Value != "trailers" {
				return -1, false
			}
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || (contentLength >= 0 && int64(n) != contentLength) {
				return -1, false
			}
			contentLength = int64(n)
		}
	}
	if f.StreamEnded() && contentLength > 0 {
		return -1, false
	}
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		return -1, false // a stream cannot depend on itself (§5.3.1 of RFC 7540)
	}
	return contentLength, true
}

// trailersOK reports whether a HEADERS frame after a request's first is well-formed
// trailers: it ends the stream and carries no pseudo-header field (RFC 9113 §8.1).
func trailersOK(f *headerBlock) bool {
	return f.StreamEnded() && len(f.PseudoFields()) == 0
}
