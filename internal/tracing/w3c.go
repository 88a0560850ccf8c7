package tracing

import (
	"encoding/hex"
	"strings"
)

// The W3C Trace Context headers (https://www.w3.org/TR/trace-context/), read and written
// without allocating beyond the one header value the balancer sends: these run on every
// call.

// parent is a valid traceparent as a client sent it. The ids are substrings of the
// header value, so reading them costs nothing.
type parent struct {
	traceID string // 32 lowercase hex digits, not all zero
	spanID  string // 16 lowercase hex digits, not all zero
	flags   byte
}

const (
	flagSampled = 0x01
	// flagRandom (Trace Context Level 2) says the trace id's right 7 bytes are random.
	flagRandom = 0x02
)

// traceparentLen is the length of a version-00 traceparent:
// 2 (version) + 1 + 32 (trace-id) + 1 + 16 (parent-id) + 1 + 2 (trace-flags).
const traceparentLen = 55

// parseTraceparent reads a traceparent header value. Per §3.2 (version-format) it
// accepts a later version's value when its first 55 characters read as version 00's and
// the next one, if any, is '-'; version ff, upper-case hex and all-zero ids are invalid.
func parseTraceparent(s string) (p parent, ok bool) {
	if len(s) > 0 && (isOWS(s[0]) || isOWS(s[len(s)-1])) {
		s = strings.Trim(s, " \t")
	}
	if len(s) < traceparentLen || !isLowerHex(s[0:2]) || s[0:2] == "ff" {
		return parent{}, false
	}
	if s[0:2] == "00" && len(s) != traceparentLen || len(s) > traceparentLen && s[traceparentLen] != '-' {
		return parent{}, false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return parent{}, false
	}
	p.traceID, p.spanID = s[3:35], s[36:52]
	if !isLowerHex(p.traceID) || !isLowerHex(p.spanID) || !isLowerHex(s[53:55]) || allZero(p.traceID) || allZero(p.spanID) {
		return parent{}, false
	}
	p.flags = unhex(s[53])<<4 | unhex(s[54])
	return p, true
}

// formatTraceparent writes the version-00 traceparent of span spanID in trace traceID
// (32 lowercase hex digits, as parseTraceparent returns them).
func formatTraceparent(traceID string, spanID [8]byte, flags byte) string {
	var b [traceparentLen]byte
	copy(b[3:35], traceID)
	return finishTraceparent(&b, spanID, flags)
}

// finishTraceparent fills in all of b but the trace id, already in b[3:35].
func finishTraceparent(b *[traceparentLen]byte, spanID [8]byte, flags byte) string {
	b[0], b[1], b[2], b[35], b[52] = '0', '0', '-', '-', '-'
	hex.Encode(b[36:52], spanID[:])
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

// validTracestate reports whether s is a tracestate header value a vendor may pass on
// (§3.3): at most 32 list-members `key=value`, keys unique and of the simple or
// multi-tenant form, values of printable ASCII without ',' or '='. Empty members (only
// spaces and tabs) are allowed and ignored.
func validTracestate(s string) bool {
	var keys [32]string
	n := 0
	for member := range strings.SplitSeq(s, ",") {
		member = strings.Trim(member, " \t")
		if member == "" {
			continue
		}
		key, value, ok := strings.Cut(member, "=")
		if !ok || n == len(keys) || !validKey(key) || !validValue(value) {
			return false
		}
		for _, k := range keys[:n] {
			if k == key {
				return false
			}
		}
		keys[n] = key
		n++
	}
	return true
}

// validKey: simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/"), or
// tenant-id "@" system-id, where tenant-id may start with a digit and has at most 241
// characters and system-id starts with lcalpha and has at most 14.
func validKey(k string) bool {
	tenant, system, multi := strings.Cut(k, "@")
	if !multi {
		return len(k) >= 1 && len(k) <= 256 && isLCAlpha(k[0]) && keyChars(k[1:])
	}
	return len(tenant) >= 1 && len(tenant) <= 241 && (isLCAlpha(tenant[0]) || isDigit(tenant[0])) && keyChars(tenant[1:]) &&
		len(system) >= 1 && len(system) <= 14 && isLCAlpha(system[0]) && keyChars(system[1:])
}

func keyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '*' && c != '/' {
			return false
		}
	}
	return true
}

// validValue: 1 to 256 characters of %x20-7E except ',' and '='. (It cannot end in a
// space: validTracestate trims the member.)
func validValue(v string) bool {
	if len(v) == 0 || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

var lowerHex = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, 'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}
