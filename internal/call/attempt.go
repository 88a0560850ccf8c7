package call

import (
	"context"
	"errors"
)

// The typed failures a data path reports of an attempt: its Stage (call.go: NotSent,
// BeforeReply, AfterReply) decides whether the call may go to another endpoint
// (retry.go); its Reason is what outlier detection counts against the endpoint
// (outlier.go).

var stageNames = [...]string{NotSent: "not_sent", BeforeReply: "before_reply", AfterReply: "after_reply"}

func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return "unknown"
}

// Reason is what went wrong with an attempt, as the outlier detector, the log and the
// metrics (label reason) name it. Every Reason is a gateway failure: something about the
// endpoint, never about the request (a Milvus error about the request is a reply like
// any other).
type Reason uint8

const (
	// Connect: the connection to the endpoint was refused or could not be made.
	Connect Reason = iota + 1
	// Refused: the backend refused the stream (REFUSED_STREAM) or sent GOAWAY below it.
	Refused
	// Reset: the stream was reset or the connection lost under the call.
	Reset
	// Unavailable: the backend answered gRPC UNAVAILABLE before any reply.
	Unavailable
	// NotServing: the reply's Milvus status says the proxy is not serving
	// (milvus.NotServing: starting, stopping, abnormal).
	NotServing
	// Timeout: the call's deadline passed with no reply from the backend.
	Timeout
)

var reasonNames = [...]string{Connect: "connect", Refused: "refused", Reset: "reset",
	Unavailable: "unavailable", NotServing: "not_serving", Timeout: "timeout"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "unknown"
}

// Attempt is one failed attempt as the data path saw it.
type Attempt struct {
	Stage  Stage
	Reason Reason
	// Err is the cause, for the client's failure and the log; may be nil.
	Err error
	// Kept: the data path holds the whole request and can send it again (see
	// Call.ReplayLimit), or sent none of it.
	Kept bool
}

// NotServed reports whether grpcStatus, a backend's answer before any reply message,
// says it did not serve the call: UNAVAILABLE (a proxy starting says "not ready yet"),
// or CANCELLED when the client cancelled nothing (a server shutting down cancels the
// calls it has not started: grpc-python, and so milvus-lite, does). The data path
// reports either as ErrBackendUnavailable, and a read goes to another endpoint, as
// Envoy's gRPC retry_on "unavailable" and "cancelled" allow.
func NotServed(grpcStatus string) bool { return grpcStatus == "14" || grpcStatus == "1" }

// ErrBackendUnavailable is the cause of a failure the data path reports for a backend's
// own gRPC UNAVAILABLE before any reply (call.BackendUnavailable's), so that AttemptOf
// names its reason.
var ErrBackendUnavailable = errors.New("the backend answered UNAVAILABLE")

// AttemptOf reads a failed attempt the way Failed's callers report it: the error, the
// stage it came at, and whether the data path can send the request again. The reason is
// read from the error: a dial error is Connect, another failure before sending Refused (a
// refused stream, a GOAWAY that did not cover it), a passed deadline Timeout, the
// backend's UNAVAILABLE (ErrBackendUnavailable) Unavailable, a held reply whose Milvus
// Status says the proxy is not serving (ErrNotServing) NotServing, anything else Reset.
func AttemptOf(err error, stage Stage, replayable bool) Attempt {
	a := Attempt{Stage: stage, Reason: Reset, Err: err, Kept: replayable}
	switch {
	case NotReceived(err):
		a.Reason = Connect
	case errors.Is(err, context.DeadlineExceeded):
		a.Reason = Timeout
	case errors.Is(err, ErrBackendUnavailable):
		a.Reason = Unavailable
	case errors.Is(err, ErrNotServing):
		a.Reason = NotServing
	case stage == NotSent:
		a.Reason = Refused
	}
	return a
}

// gatewayFailure reports whether a counts against its endpoint: every reason does, but a
// deadline that passed once the reply had begun says the call was slow, not that the
// endpoint is gone.
func (a Attempt) gatewayFailure() bool {
	return a.Reason != 0 && !(a.Reason == Timeout && a.Stage == AfterReply)
}
