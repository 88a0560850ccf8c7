package call

import (
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Record is what is known of one finished call: the one account of it that the metrics,
// the access log, the admin page and traces read. The data path fills it as the call
// goes; it holds names and counts only, never request or reply content beyond them, and
// never a credential (User is the user name, without the password).
//
// A Record belongs to its call until the call ends and Observe is called; observers must
// not keep the pointer after Observe returns.
type Record struct {
	Start    time.Time
	Duration time.Duration

	// The client side.
	Client     string // the client's address:port
	Port       int    // the listener port
	Authority  string // :authority or Host
	TLSVersion uint16 // 0 on a plaintext listener
	ServerName string // TLS SNI
	User       string // from `authorization: Basic base64(user:password)`, "" when none

	// What was asked.
	GRPC        bool
	Method      string // MilvusService method name, "grpc" for other gRPC, the path for REST
	DB          string // resolved as Milvus resolves it: db_name field, dbname metadata, "default"
	Collection  string
	Consistency string // consistency level of Search, Query, HybridSearch ("" when not given)
	Rows        int64  // Insert, Upsert
	NQ, TopK    int64  // Search
	RequestID   string // client-request-id / client_request_id metadata
	TraceID     string // W3C trace id, hex
	// The balancer's span of the call and the client's span it continues (16 hex digits
	// each; see tracing.Span): SpanID is "" when no span is recorded for the call,
	// ParentSpanID is "" when the trace starts at the balancer.
	SpanID, ParentSpanID string

	// Where it went.
	Ingress  string // namespace/name of the Ingress (or route) whose rule took the call, "" when none
	Backend  string // namespace/service:port, "" when the call was not routed
	Endpoint string // ip:port of the last endpoint tried
	Attempts int    // endpoints tried (0 when none was picked)
	Cache    string // the reply cache: CacheHit, CacheMiss, CacheBypass; "" when it had no part

	// What came back.
	Code          codes.Code // gRPC status (gRPC calls)
	Status        int        // HTTP status (REST calls)
	MilvusCode    int32      // common.Status.code of the reply (0 when none or success)
	MilvusErrCode int32      // common.Status.error_code (the legacy enum) of the reply
	MilvusReason  string     // common.Status.reason, cut to 200 bytes
	RequestBytes  int64
	ResponseBytes int64

	// RateLimit is the name of the milvus-lb.io/rate-limits limit that refused the call,
	// which milvus-lb then answered itself with Milvus's rate-limit reply; "" otherwise,
	// also when Milvus itself answered with a rate limit (MilvusCode 8 with an Endpoint).
	RateLimit string
}

// Observer receives every finished call. Implementations must be cheap, must not block
// and must be safe for concurrent use: Observe runs on the data path.
type Observer interface {
	Observe(r *Record)
}

// Failed reports whether the call failed as its client sees it: a gRPC status other than
// OK, an HTTP status of 400 or more, or an error Status in Milvus's reply (which comes
// inside an OK gRPC reply).
func (r *Record) Failed() bool {
	if r.GRPC && r.Code != codes.OK || !r.GRPC && r.Status >= 400 {
		return true
	}
	return r.MilvusStatus() != 0
}

// MilvusStatus is the code of the reply's Milvus Status: code, or the legacy error_code
// when only that is set (older Milvus versions); 0 for success or no Status.
func (r *Record) MilvusStatus() int32 {
	if r.MilvusCode != 0 {
		return r.MilvusCode
	}
	return r.MilvusErrCode
}

// FieldsObserver is an Observer that reads only some of the record's fields taken from
// the request message (DB, Collection, Consistency, Rows, NQ, TopK): RecordFields names
// them. The request scanner reads no more of a call's message than its observers and its
// route use: a Search's counts and level come after its vectors, its names first.
type FieldsObserver interface {
	Observer
	RecordFields() milvus.Fields
}

// RecordFields is what o reads of the request message: every field unless o is a
// FieldsObserver; none for nil.
func RecordFields(o Observer) milvus.Fields {
	switch o := o.(type) {
	case nil:
		return 0
	case FieldsObserver:
		return o.RecordFields()
	}
	return milvus.AllFields
}

// Observers passes each record to every observer in turn.
type Observers []Observer

func (os Observers) Observe(r *Record) {
	for _, o := range os {
		o.Observe(r)
	}
}

// RecordFields is what any of the observers reads (FieldsObserver).
func (os Observers) RecordFields() (f milvus.Fields) {
	for _, o := range os {
		f |= RecordFields(o)
	}
	return f
}

// TraceContext is a W3C trace context: the traceparent and tracestate header values
// ("" when absent).
type TraceContext struct{ Traceparent, Tracestate string }

// TraceIDs are a call's place in its trace, for the record (see Record.TraceID).
type TraceIDs struct{ TraceID, SpanID, ParentSpanID string }

// StartTrace begins a call's span from the client's trace context and returns the ids for
// the record and the context to send upstream in place of the client's (internal/tracing).
type StartTrace func(client TraceContext) (TraceIDs, TraceContext)
