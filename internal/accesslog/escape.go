package accesslog

import (
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	return append(appendJSONBody(append(b, '"'), s), '"')
}

// appendJSONBody appends s as the inside of a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced, U+2028 and U+2029 escaped as encoding/json
// does.
func appendJSONBody(b []byte, s string) []byte {
	i := plainPrefix(s)
	if i == len(s) { // names, addresses, codes: almost every value
		return append(b, s...)
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			default:
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	return append(b, s[start:]...)
}

// plainPrefix returns the length of the start of s that a JSON string holds as it is,
// eight (or four) bytes at a time while it can; the last word may overlap bytes already
// found plain.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for n := len(s); i+8 <= n; i = min(i+8, n-8) { // the last word may overlap
		w := s[i : i+8] // one load: the compiler merges the eight below
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, bs := x^(ones*'"'), x^(ones*'\\')
		// A byte below 0x20, a quote, a backslash, or one of 0x80 and above. (A byte's
		// subtraction borrows from the next only when it is itself one of these.)
		if ((x-ones*0x20)|(q-ones)|(bs-ones)|x)&highs != 0 {
			break
		}
		if i+8 == n {
			return n
		}
	}
	if len(s) >= 4 && len(s) < 8 && plain4(s) && plain4(s[len(s)-4:]) {
		return len(s)
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}

// plain4 reports whether the first four bytes of s are plain.
func plain4(s string) bool {
	const ones, highs = 0x01010101, 0x80808080
	w := s[:4]
	x := uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((x-ones*0x20)|(q-ones)|(bs-ones)|x)&highs == 0
}

// appendTextValue appends s bare when it is printable ASCII without quotes, backslashes,
// spaces or '=', and quoted (Go syntax) otherwise, empty strings included.
func appendTextValue(b []byte, s string) []byte {
	bare := s != ""
	for i := 0; i < len(s) && bare; i++ {
		c := s[i]
		bare = c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\'
	}
	if bare {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}
