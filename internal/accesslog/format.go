package accesslog

import (
	"crypto/tls"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// maxRequestID bounds the client's request id in a line.
const maxRequestID = 128

// encoder turns records into lines; it belongs to the writer goroutine. The fields are
// listed once, in record, for both formats.
type encoder struct {
	b    []byte
	text bool
	sep  byte // between fields
	n    int  // fields in the line so far

	sec   int64  // the second stamp holds
	stamp []byte // "2006-01-02T15:04:05" of sec, UTC
}

// record appends the line of r to b.
func (e *encoder) record(b []byte, r *call.Record, f Format) []byte {
	e.b, e.text, e.n, e.sep = b, f == Text, 0, ','
	if e.text {
		e.sep = ' '
	} else {
		e.b = append(e.b, '{')
	}
	e.time("time", r.Start)
	e.key("duration_ms")
	e.millis(r.Duration)
	e.str("client", r.Client)
	e.num("port", int64(r.Port))
	e.str("authority", r.Authority)
	e.str("tls_version", tlsVersion(r.TLSVersion))
	e.str("tls_server_name", r.ServerName)
	user := r.User
	if user == "" {
		user = "-"
	}
	e.str("user", user)
	e.str("method", r.Method)
	e.str("db", r.DB)
	e.str("collection", r.Collection)
	e.str("consistency_level", r.Consistency)
	e.num("rows", r.Rows)
	e.num("nq", r.NQ)
	e.num("topk", r.TopK)
	e.num("request_bytes", r.RequestBytes)
	e.num("response_bytes", r.ResponseBytes)
	e.str("backend", r.Backend)
	e.str("endpoint", r.Endpoint)
	e.num("attempts", int64(r.Attempts))
	grpcStatus, httpStatus := "", int64(r.Status)
	if r.GRPC {
		grpcStatus, httpStatus = r.Code.String(), 0
	}
	e.str("grpc_status", grpcStatus)
	e.num("http_status", httpStatus)
	e.str("milvus_code", milvus.CodeName(r.MilvusCode, r.MilvusErrCode))
	e.str("milvus_reason", r.MilvusReason)
	e.str("rate_limit", r.RateLimit)
	e.str("request_id", r.RequestID[:min(len(r.RequestID), maxRequestID)])
	e.str("trace_id", r.TraceID)
	if !e.text {
		e.b = append(e.b, '}')
	}
	return append(e.b, '\n')
}

// millis appends d in milliseconds with three decimals, rounded to the microsecond.
func (e *encoder) millis(d time.Duration) {
	if d < 0 {
		e.b = append(e.b, '-')
		d = -d
	}
	us := (d + 500) / time.Microsecond
	e.b = strconv.AppendInt(e.b, int64(us/1000), 10)
	f := us % 1000
	e.b = append(e.b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

func (e *encoder) key(k string) {
	if e.n > 0 {
		e.b = append(e.b, e.sep)
	}
	e.n++
	if e.text {
		e.b = append(append(e.b, k...), '=')
		return
	}
	e.b = append(e.b, '"')
	e.b = append(append(e.b, k...), '"', ':')
}

func (e *encoder) num(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *encoder) str(k, v string) {
	e.key(k)
	if e.text {
		e.b = appendTextValue(e.b, v)
	} else {
		e.b = appendJSONString(e.b, v)
	}
}

// time appends t as RFC 3339 in UTC with milliseconds; the part down to the second is
// formatted once a second.
func (e *encoder) time(k string, t time.Time) {
	e.key(k)
	t = t.UTC()
	if sec := t.Unix(); sec != e.sec || e.stamp == nil {
		e.sec, e.stamp = sec, t.AppendFormat(e.stamp[:0], "2006-01-02T15:04:05")
	}
	if !e.text {
		e.b = append(e.b, '"')
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	e.b = append(append(e.b, e.stamp...), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	if !e.text {
		e.b = append(e.b, '"')
	}
}

func tlsVersion(v uint16) string {
	switch v {
	case 0:
		return ""
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1.0"
	}
	return "unknown"
}

const hex = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced, U+2028 and U+2029 escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	i := plainPrefix(s)
	if i == len(s) { // names, addresses, codes: almost every value
		return append(append(b, s...), '"')
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
	return append(append(b, s[start:]...), '"')
}

// plainPrefix returns the length of the start of s that a JSON string holds as it is,
// eight bytes at a time while it can.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8] // one load: the compiler merges the eight below
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, bs := x^(ones*'"'), x^(ones*'\\')
		// A byte below 0x20, a quote, a backslash, or one of 0x80 and above.
		if ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs|x)&highs != 0 {
			break
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
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
