package relay

import (
	"encoding/binary"

	"golang.org/x/net/http/httpguts"
)

// The field checks of blockDecoder.emitter run on every field of every header block (about
// 12 per Search call); x/net's per-rune IsTokenRune and per-byte ValidHeaderFieldValue
// cost about 3,000 instructions per call, counted with callgrind. These say the same with
// one table look-up per byte of a name and eight bytes at a time for a value.

// fieldNameByte[b] is set for a byte a field name may hold: a token byte, not in upper
// case (RFC 9113 §8.2.1), as httpguts.IsTokenRune says of it.
var fieldNameByte = func() (t [256]bool) {
	for b := range 0x80 {
		t[b] = httpguts.IsTokenRune(rune(b)) && !('A' <= b && b <= 'Z')
	}
	return t
}()

// validFieldName reports whether name is a valid HTTP/2 field name: a token, in lower
// case (RFC 9113 §8.2.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !fieldNameByte[name[i]] {
			return false
		}
	}
	return true
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// validFieldValue is httpguts.ValidHeaderFieldValue: no control byte but tab (RFC 9110
// §5.5). Eight bytes at a time, a word with no byte below 0x20 and none 0x7f passes
// (the "has a byte less than n" test of Anderson's bit hacks, exact in whether there is
// one); a word that might hold one is checked byte by byte.
func validFieldValue(v string) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(v[i : i+8]))
		y := x ^ 0x7f*lowBits // a byte 0x7f becomes zero
		if ((x-0x20*lowBits)&^x|(y-lowBits)&^y)&highBits != 0 && !httpguts.ValidHeaderFieldValue(v[i:i+8]) {
			return false
		}
	}
	return httpguts.ValidHeaderFieldValue(v[i:])
}
