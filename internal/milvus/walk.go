package milvus

import (
	"encoding/binary"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// A walker reads the fields of one protobuf message that arrives in pieces (the DATA
// frames of a call), never holding more of it than one field header and the first bytes
// of a value its reader asked for: the rest is skipped as it passes, so a 64 MiB Insert
// costs a few counters, and a field after the vectors (SearchRequest's nq, InsertRequest's
// num_rows) is still found. Its reader pulls events with next and, for each
// length-delimited field, says with decide whether to skip it, take its first bytes, or
// enter it as a submessage.
//
// The gRPC framing is the scanners' (frame.go); a walker sees message bytes only.
type walker struct {
	walkState
	// buf holds the first n bytes of the value being collected. It is not cleared when
	// the walker starts again: n says what of it is the value's, and clearing its 256
	// bytes, twice for each of a call's two scanners, was half of what their resets wrote.
	buf [valueCap]byte
}

// walkState is the walker's state but its value buffer.
type walkState struct {
	end  int64 // length of the message; -1 while unknown (a prefix of it)
	off  int64 // offset in the message of the next byte to read
	skip int64 // bytes of the current value still to pass over

	ends  [maxDepth]int64 // end offsets of the submessages entered
	depth int

	pending int64            // length of the length-delimited field awaiting decide; -1 when none
	pnum    protowire.Number // its number

	taking bool  // collecting the first bytes of a value into buf
	want   int   // bytes still to collect
	rest   int64 // bytes of the value past what is collected, passed over afterwards
	n      int   // bytes collected

	hdr    [maxHeader]byte // a field header split between pieces
	hdrN   int
	groups int  // groups open: their fields are passed over (no Milvus message has one)
	bad    bool // not a valid encoding: nothing more is read

	ev event // the last event: what next returned is its kind
}

const (
	// maxHeader is the longest field header: a tag and a varint (a value or a length).
	maxHeader = 2 * binary.MaxVarintLen64
	// valueCap is the most of one value a reader may take: Milvus names are at most 255
	// bytes, reasons are cut to 200.
	valueCap = 256
	// maxDepth is how deep a reader may enter: a reply's Status (a request's small
	// search_params pairs are taken whole instead).
	maxDepth = 1
)

type action uint8

const (
	skipValue  action = iota // pass over the value
	takeValue                // collect its first bytes, up to a cap, then an evValue
	enterValue               // walk its fields (a submessage)
)

type eventKind uint8

const (
	evMore  eventKind = iota // the bytes given are used up
	evEnd                    // the message ended where a field may start (it was whole)
	evBad                    // not a valid encoding (or it ended inside a field)
	evField                  // a field header at depth
	evValue                  // the bytes taken of a value
	evLeave                  // the submessage entered at depth ended
)

// event is the walker's last event (kept in the walker, not copied out: the copies cost
// more than the parse).
type event struct {
	kind  eventKind
	depth int // 0: the message's own fields
	num   protowire.Number
	typ   protowire.Type
	v     uint64 // a varint field's value
	b     []byte // evValue: the first bytes of the value (aliases the walker's buffer)
	whole bool   // evValue: b is all of the value
}

func (w *walker) reset(end int64) {
	w.walkState = walkState{end: end, pending: -1}
}

// limit is the offset the current field must end by, or -1 when unknown.
func (w *walker) limit() int64 {
	if w.depth > 0 {
		return w.ends[w.depth-1]
	}
	return w.end
}

// decide says what to do with the length-delimited field of the last evField; a field
// left undecided is skipped. cap bounds what takeValue collects (at most valueCap).
func (w *walker) decide(a action, cap int) {
	n := w.pending
	if n < 0 {
		return
	}
	w.pending = -1
	switch {
	case a == enterValue && w.depth < maxDepth:
		w.ends[w.depth] = w.off + n
		w.depth++
	case a == takeValue:
		t := min(n, int64(min(cap, valueCap)))
		w.taking, w.want, w.rest, w.n = true, int(t), n-t, 0
	default:
		w.skip = n
	}
}

// next reads from *p (advancing it) until it has an event, and returns its kind; the
// event is w.ev.
func (w *walker) next(p *[]byte) eventKind {
	w.decide(skipValue, 0)
	for {
		switch {
		case w.bad:
			return w.emit(evBad)
		case w.taking && w.want == 0:
			w.taking, w.skip = false, w.rest
			w.ev = event{kind: evValue, depth: w.depth, num: w.pnum, b: w.buf[:w.n], whole: w.rest == 0}
			return evValue
		case w.taking:
			if len(*p) == 0 {
				return w.emit(evMore)
			}
			k := copy(w.buf[w.n:w.n+w.want], *p)
			w.n, w.want, w.off, *p = w.n+k, w.want-k, w.off+int64(k), (*p)[k:]
		case w.skip > 0:
			if len(*p) == 0 {
				return w.emit(evMore)
			}
			k := min(w.skip, int64(len(*p)))
			w.skip, w.off, *p = w.skip-k, w.off+k, (*p)[k:]
		case w.depth > 0 && w.off == w.ends[w.depth-1] && w.hdrN == 0 && w.groups == 0:
			w.depth--
			w.ev = event{kind: evLeave, depth: w.depth + 1}
			return evLeave
		case w.end >= 0 && w.off == w.end && w.hdrN == 0 && w.groups == 0:
			return w.emit(evEnd)
		case w.off == w.limit() && w.hdrN == 0:
			// A group open at the end of its message.
			w.bad = true
		case len(*p) == 0:
			if w.end >= 0 && w.off+int64(w.hdrN) >= w.end {
				// Every byte of the message was given and a field is cut short.
				w.bad = true
				continue
			}
			return w.emit(evMore)
		default:
			if w.header(p) {
				return evField
			}
		}
	}
}

func (w *walker) emit(k eventKind) eventKind {
	w.ev.kind = k
	return k
}

// header reads a field header from the bytes kept from the last piece and *p into w.ev.
// It returns false when it needs more bytes (keeping what there is) or the encoding is
// bad.
func (w *walker) header(p *[]byte) bool {
	src, kept := *p, w.hdrN
	if kept > 0 {
		k := copy(w.hdr[kept:], *p)
		src = w.hdr[:kept+k]
	}
	num, typ, n := protowire.ConsumeTag(src)
	var v uint64
	m := 0
	if n > 0 && (typ == protowire.VarintType || typ == protowire.BytesType) {
		v, m = protowire.ConsumeVarint(src[n:])
	}
	switch {
	case n < 0 || m < 0:
		code := n
		if n > 0 {
			code = m
		}
		if len(src) < maxHeader && protowire.ParseError(code) == io.ErrUnexpectedEOF {
			// Cut at the end of the piece: keep it for the next one.
			w.hdrN = copy(w.hdr[:], src)
			*p = (*p)[len(*p):]
			return false
		}
		w.bad = true
		return false
	}
	hl := n + m
	w.hdrN, w.off, *p = 0, w.off+int64(hl), (*p)[hl-kept:]
	w.ev = event{kind: evField, depth: w.depth, num: num, typ: typ}
	var size int64
	switch typ {
	case protowire.VarintType:
		w.ev.v = v
	case protowire.BytesType:
		size, w.pending, w.pnum = int64(v), int64(v), num
		if v > 1<<62 {
			w.bad = true
			return false
		}
	case protowire.Fixed32Type:
		size, w.skip = 4, 4
	case protowire.Fixed64Type:
		size, w.skip = 8, 8
	case protowire.StartGroupType:
		w.groups++
	case protowire.EndGroupType:
		if w.groups == 0 {
			w.bad = true
		}
		w.groups--
	}
	if l := w.limit(); l >= 0 && w.off+size > l {
		w.bad = true
	}
	if w.bad || w.groups > 0 || typ == protowire.EndGroupType {
		// Inside a group, or its end: nothing a reader asked for.
		w.decide(skipValue, 0)
		return false
	}
	return true
}
