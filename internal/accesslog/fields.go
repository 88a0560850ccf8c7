package accesslog

import (
	"crypto/tls"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// maxRequestID bounds the client's request id in a line.
const maxRequestID = 128

// kind is how a field's value is written.
type kind uint8

const (
	// A string a client or the configuration controls: escaped in JSON, quoted in text
	// when it holds anything but printable ASCII without quotes, spaces or '='.
	kString kind = iota
	// A name from milvus-lb's own tables (TLS versions, status names): printable ASCII
	// without quotes, backslashes, spaces or '=', written as it is.
	kName
	kInt
	kTime   // Record.Start
	kMillis // Record.Duration
)

// field is one field of a line: its key, and how its value is read from the record (str
// for kString and kName, num for kInt).
type field struct {
	key  string
	kind kind
	str  func(*call.Record) string
	num  func(*call.Record) int64
}

func str(key string, v func(*call.Record) string) field {
	return field{key: key, kind: kString, str: v}
}
func name(key string, v func(*call.Record) string) field { return field{key: key, kind: kName, str: v} }
func num(key string, v func(*call.Record) int64) field   { return field{key: key, kind: kInt, num: v} }

// fields are the fields of a line, in their order (README.md, "Access log fields"). The
// key prefixes of both formats are made from this list once (fragments).
var fields = [...]field{
	{key: "time", kind: kTime},
	{key: "duration_ms", kind: kMillis},
	str("client", func(r *call.Record) string { return r.Client }),
	num("port", func(r *call.Record) int64 { return int64(r.Port) }),
	str("authority", func(r *call.Record) string { return r.Authority }),
	name("tls_version", func(r *call.Record) string { return tlsVersion(r.TLSVersion) }),
	str("tls_server_name", func(r *call.Record) string { return r.ServerName }),
	str("user", user),
	str("method", func(r *call.Record) string { return r.Method }),
	str("db", func(r *call.Record) string { return r.DB }),
	str("collection", func(r *call.Record) string { return r.Collection }),
	str("consistency_level", func(r *call.Record) string { return r.Consistency }),
	num("rows", func(r *call.Record) int64 { return r.Rows }),
	num("nq", func(r *call.Record) int64 { return r.NQ }),
	num("topk", func(r *call.Record) int64 { return r.TopK }),
	num("request_bytes", func(r *call.Record) int64 { return r.RequestBytes }),
	num("response_bytes", func(r *call.Record) int64 { return r.ResponseBytes }),
	str("backend", func(r *call.Record) string { return r.Backend }),
	str("endpoint", func(r *call.Record) string { return r.Endpoint }),
	num("attempts", func(r *call.Record) int64 { return int64(r.Attempts) }),
	name("grpc_status", grpcStatus),
	num("http_status", httpStatus),
	name("milvus_code", func(r *call.Record) string { return milvus.CodeName(r.MilvusCode, r.MilvusErrCode) }),
	str("milvus_reason", func(r *call.Record) string { return r.MilvusReason }),
	str("rate_limit", func(r *call.Record) string { return r.RateLimit }),
	str("request_id", func(r *call.Record) string { return r.RequestID[:min(len(r.RequestID), maxRequestID)] }),
	str("trace_id", func(r *call.Record) string { return r.TraceID }),
}

func user(r *call.Record) string {
	if r.User == "" {
		return "-"
	}
	return r.User
}

// grpcStatus is the gRPC status name of a gRPC call, "" for REST.
func grpcStatus(r *call.Record) string {
	if !r.GRPC {
		return ""
	}
	return r.Code.String() // "OK", ..., or "Code(17)": a name as kName wants
}

// httpStatus is the HTTP status of a REST call, 0 for gRPC.
func httpStatus(r *call.Record) int64 {
	if r.GRPC {
		return 0
	}
	return int64(r.Status)
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
