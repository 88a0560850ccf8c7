package admin

import (
	"slices"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

// FailedCall is a recent failed call as the admin page lists it, with the access log's
// field names: the names and counts of call.Record, no content and no credential.
type FailedCall struct {
	Time         time.Time `json:"time"` // when the call started
	DurationMs   float64   `json:"duration_ms"`
	Client       string    `json:"client"`
	Port         int       `json:"port"`
	Authority    string    `json:"authority"`
	User         string    `json:"user"`
	Method       string    `json:"method"`
	DB           string    `json:"db"`
	Collection   string    `json:"collection"`
	Backend      string    `json:"backend"`
	Endpoint     string    `json:"endpoint"`
	Attempts     int       `json:"attempts"`
	GRPCStatus   string    `json:"grpc_status,omitempty"` // gRPC calls
	HTTPStatus   int       `json:"http_status,omitempty"` // REST calls
	MilvusCode   int32     `json:"milvus_code"`
	MilvusReason string    `json:"milvus_reason"`
	RequestID    string    `json:"request_id"`
	TraceID      string    `json:"trace_id"`
}

// recentFailures returns the failed calls kept, newest first.
func (l *Live) recentFailures() []FailedCall {
	out := make([]FailedCall, 0, failureRing)
	for i := range l.failures {
		r := l.failures[i].Load()
		if r == nil {
			continue
		}
		f := FailedCall{Time: r.Start, DurationMs: ms(r.Duration), Client: r.Client, Port: r.Port, Authority: r.Authority,
			User: r.User, Method: r.Method, DB: r.DB, Collection: r.Collection, Backend: r.Backend, Endpoint: r.Endpoint,
			Attempts: r.Attempts, MilvusCode: r.MilvusStatus(), MilvusReason: r.MilvusReason,
			RequestID: r.RequestID, TraceID: r.TraceID}
		if r.GRPC {
			f.GRPCStatus = r.Code.String()
		} else {
			f.HTTPStatus = r.Status
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FailedCall) int { return b.Time.Compare(a.Time) })
	return out
}

var _ call.Observer = (*Live)(nil)
