package call

import (
	"errors"

	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// A Milvus proxy that is not serving (starting, stopping, abnormal) answers most calls
// with gRPC OK and a Status saying so inside the reply (milvus.NotServing). Once such a
// reply's headers reach the client the call is over, so a read answered that way would
// fail for its client although another endpoint could answer it. For a call that may be
// sent again, the data path therefore holds the reply's headers, and the reply's first
// bytes, until the Status is read (it is the first field of every MilvusService reply
// that has one, so it is known from the first DATA frame), and asks ReplyHeld what to do:
// send the reply on, or, when the Status says the proxy is not serving, report the
// attempt as failed (ErrNotServing, through Failed) so that the read goes to another
// endpoint, within the same bounds as any retry (retry.go). A write's reply is never
// held: a write answered "not ready" is relayed as it came, and only counts against the
// endpoint (settle).

// ReplyHoldLimit is the most of a reply the data path holds while it waits for the
// Status: one default HTTP/2 DATA frame. A Status (with its reason) is a few hundred
// bytes; a reply whose Status is not read within this is sent on.
const ReplyHoldLimit = 16 << 10

// ErrNotServing is the cause a data path reports (Failed) for a held reply whose Milvus
// Status says the proxy is not serving, so that AttemptOf names its reason NotServing.
var ErrNotServing = errors.New("the backend's reply says it is not serving")

// HeldReply is ReplyHeld's verdict on a held reply.
type HeldReply uint8

const (
	// ReplyWait: the Status is not read yet: hold what came, and wait for more.
	ReplyWait HeldReply = iota
	// ReplySend: send the headers and what was held on, and the rest as it comes.
	ReplySend
	// ReplyNotServing: the proxy is not serving: report the attempt failed
	// (ErrNotServing, stage BeforeReply); if the call does not go elsewhere, send the
	// reply on.
	ReplyNotServing
)

// HoldReply reports whether the data path should hold the reply of the call's current
// attempt (its headers, then its first bytes, each given to Response) until ReplyHeld
// says what to do: a unary read-only MilvusService call whose reply carries a Status,
// with another attempt left. The data path holds it only while it keeps the whole
// request to send again.
func (c *Call) HoldReply() bool {
	if c.scan == nil || !c.method.ReadOnly || c.method.Streaming {
		return false
	}
	if _, known := c.scan.reply.Result(); known {
		return false // the reply has no Status
	}
	return c.Rec.Attempts < c.policy().Retry.MaxAttempts
}

// ReplyHeld decides on a held reply of which held bytes were given to Response; reading
// is what Response last returned (false: the Status scanner has nothing more to learn).
func (c *Call) ReplyHeld(held int, reading bool) HeldReply {
	st, known := c.scan.reply.Result()
	switch {
	case known && milvus.NotServing(st.Code, st.ErrorCode):
		return ReplyNotServing
	case known || !reading || held >= ReplyHoldLimit:
		return ReplySend
	}
	return ReplyWait
}
