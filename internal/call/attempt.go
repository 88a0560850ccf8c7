package call

import (
	"context"
	"errors"
)

// Stage is how far a failed attempt got. It decides whether the call may go to another
// endpoint (retry.go): any call that provably did not reach the backend may, a read-only
// one that did may while nothing of the reply reached the client.
type Stage uint8

const (
	// NotSent: the backend provably did not receive the call: the connection was refused
	// or could not be made, the backend refused the stream (REFUSED_STREAM), or the
	// stream's id was above the last stream id of the backend's GOAWAY.
	NotSent Stage = iota + 1
	// BeforeReply: the backend may have received the call, but nothing of its reply went
	// to the client yet (a reply the data path held back, such as a Trailers-Only
	// UNAVAILABLE, counts as not gone).
	BeforeReply
	// AfterReply: part of the backend's reply went to the client; the call can only fail.
	AfterReply
)

var stageNames = [...]string{NotSent: "not_sent", BeforeReply: "before_reply", AfterReply: "after_reply"}

func (s Stage) String() string {
	if int(s) < len(stageNames) && stageNames[s] != "" {
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

// AttemptOf reads an error of a round trip the way Failed's callers report it: a dial
// error was not sent, a passed deadline is a timeout, anything else a reset after the
// call went out. replayable says whether the request can be sent again.
func AttemptOf(err error, replayable bool) Attempt {
	a := Attempt{Stage: BeforeReply, Reason: Reset, Err: err, Kept: replayable}
	switch {
	case NotReceived(err):
		a.Stage, a.Reason = NotSent, Connect
	case errors.Is(err, context.DeadlineExceeded):
		a.Reason = Timeout
	}
	return a
}

// gatewayFailure reports whether a counts against its endpoint: every reason does, but a
// deadline that passed once the reply had begun says the call was slow, not that the
// endpoint is gone.
func (a Attempt) gatewayFailure() bool {
	return a.Reason != 0 && !(a.Reason == Timeout && a.Stage == AfterReply)
}
