package relay

import (
	"strconv"
)

// maxWindow is the largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
const maxWindow = 1<<31 - 1

// requestHead is what the relay reads of a request's regular fields, noted by
// checkRequest's one walk over them (the last value of each, "" when none).
type requestHead struct {
	contentLength int64 // -1 without one
	contentType   string
	host          string
	timeout       string // grpc-timeout
}

// checkRequest validates a request's header block beyond what the Framer checks (field
// names, pseudo-header order, duplicates and kinds): the pseudo-header fields a request
// must carry (RFC 9113 §8.3.1), connection-specific fields (§8.2.2), and content-length.
// It returns what the relay reads of the regular fields and whether the request is
// well-formed; a malformed request is answered with RST_STREAM(PROTOCOL_ERROR) (§8.1.1).
func checkRequest(f *headerBlock) (h requestHead, ok bool) {
	h.contentLength = -1
	if f.Pseudo(pMethod) == "" || f.Pseudo(pScheme) == "" || f.Pseudo(pPath) == "" || f.at[pStatus] != 0 {
		return h, false
	}
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return h, false
		case "te":
			if hf.Value != "trailers" {
				return h, false
			}
		case "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || (h.contentLength >= 0 && int64(n) != h.contentLength) {
				return h, false
			}
			h.contentLength = int64(n)
		case "content-type":
			h.contentType = hf.Value
		case "host":
			h.host = hf.Value
		case "grpc-timeout":
			h.timeout = hf.Value
		}
	}
	if f.StreamEnded() && h.contentLength > 0 {
		return h, false
	}
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		return h, false // a stream cannot depend on itself (§5.3.1 of RFC 7540)
	}
	return h, true
}

// trailersOK reports whether a HEADERS frame after a request's first is well-formed
// trailers: it ends the stream and carries no pseudo-header field (RFC 9113 §8.1).
func trailersOK(f *headerBlock) bool {
	return f.StreamEnded() && len(f.PseudoFields()) == 0
}
