package accesslog

import (
	"strconv"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// fragments holds, per format, what comes before each field's value: the end of the
// previous value (JSON's closing quote), the separator, the key, and the start of this
// value (JSON's opening quote); the last one ends the line. Made once from fields, so a
// line is a fragment and a value per field.
var fragments = [2][len(fields) + 1]string{JSON: makeFragments(JSON), Text: makeFragments(Text)}

func makeFragments(f Format) (out [len(fields) + 1]string) {
	open, sep, colon, end := `{"`, `,"`, `":`, "}\n"
	if f == Text {
		open, sep, colon, end = "", " ", "=", "\n"
	}
	closer := "" // the previous value's closing quote
	for i, fd := range fields {
		s := closer + sep
		if i == 0 {
			s = open
		}
		s += fd.key + colon
		closer = ""
		if f == JSON && (fd.kind == kString || fd.kind == kName || fd.kind == kTime) {
			s, closer = s+`"`, `"`
		}
		out[i] = s
	}
	out[len(fields)] = closer + end
	return out
}

// encoder turns records into lines. Its only state is the time stamp it formatted last.
// Lines are built in a local slice passed along (not a field of the encoder), so that
// appending to it needs no write barrier while the garbage collector runs.
type encoder struct {
	sec   int64    // the second stamp holds
	stamp [19]byte // "2006-01-02T15:04:05" of sec, UTC
	ok    bool     // stamp holds sec
}

// record appends the line of r in format f to b.
func (e *encoder) record(b []byte, r *call.Record, f Format) []byte {
	frags := &fragments[f]
	for i := range fields {
		fd := &fields[i]
		b = append(b, frags[i]...)
		switch fd.kind {
		case kString:
			if f == JSON {
				b = appendJSONBody(b, fd.str(r))
			} else {
				b = appendTextValue(b, fd.str(r))
			}
		case kName:
			b = appendName(b, fd.str(r), f)
		case kInt:
			b = appendInt(b, fd.num(r))
		case kTime:
			b = e.time(b, r.Start)
		case kMillis:
			b = appendMillis(b, r.Duration)
		}
	}
	return append(b, frags[len(fields)]...)
}

// appendName appends a kName value: as it is, but "" in text for the empty string.
func appendName(b []byte, s string, f Format) []byte {
	if s == "" && f == Text {
		return append(b, '"', '"')
	}
	return append(b, s...)
}

// appendInt appends v in decimal; most counts in a line are single digits.
func appendInt(b []byte, v int64) []byte {
	if uint64(v) < 10 {
		return append(b, byte('0'+v))
	}
	return strconv.AppendInt(b, v, 10)
}

// appendMillis appends d in milliseconds with three decimals, rounded to the microsecond.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	us := (d + 500) / time.Microsecond
	b = strconv.AppendInt(b, int64(us/1000), 10)
	f := us % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// time appends t as RFC 3339 in UTC with milliseconds; the part down to the second is
// formatted once a second.
func (e *encoder) time(b []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); sec != e.sec || !e.ok {
		e.sec, e.ok = sec, true
		t.AppendFormat(e.stamp[:0], "2006-01-02T15:04:05")
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	return append(append(b, e.stamp[:]...), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}
