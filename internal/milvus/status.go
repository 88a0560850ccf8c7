package milvus

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Status is the Milvus status of a reply: Milvus answers most of its errors inside a gRPC
// OK reply, as a common.Status in the body (milvus-proto common.proto, message Status).
type Status struct {
	Code      int32  // common.Status.code: the Milvus error code (merr), 0 on success
	ErrorCode int32  // common.Status.error_code: the legacy commonpb.ErrorCode
	Reason    string // common.Status.reason, cut to MaxReason bytes, then to SafeReason
	Retriable bool   // common.Status.retriable
}

// MaxReason is the most of a Status reason kept (in bytes, cut at a character boundary);
// what Milvus quotes of the request in it is cut off after (SafeReason).
const MaxReason = 200

// OK reports a success status (as Milvus's merr.Ok decides it).
func (s Status) OK() bool { return s.Code == 0 && s.ErrorCode == 0 }

// Name is the status's name for logs and metric labels (CodeName).
func (s Status) Name() string { return CodeName(s.Code, s.ErrorCode) }

// Status fields (common.proto): error_code=1 reason=2 code=3 retriable=4, then detail=5
// and extra_info=6, which are not read.
const (
	statusErrorCode protowire.Number = 1
	statusReason    protowire.Number = 2
	statusCode      protowire.Number = 3
	statusRetriable protowire.Number = 4
)

// replyLayout is where a reply carries its Status, from the descriptors: the reply is a
// common.Status itself (49 methods), or has a field of that type named status (field 1
// in most, 2 in RegisterLinkResponse, 3 in ComponentStates); 3 replies have none.
type replyLayout struct {
	self   bool
	status protowire.Number
}

func newReplyLayout(out protoreflect.MessageDescriptor) replyLayout {
	if out.FullName() == statusName {
		return replyLayout{self: true}
	}
	fd := out.Fields().ByName("status")
	if fd == nil || fd.IsList() || fd.Message() == nil || fd.Message().FullName() != statusName {
		return replyLayout{}
	}
	return replyLayout{status: fd.Number()}
}

const statusName = "milvus.proto.common.Status"

// StatusScanner reads the Status of a call's reply from the DATA bytes of its response
// stream as they pass (the gRPC framing included), the way RequestScanner reads requests:
// the status is the first field of almost every reply, so the first bytes tell it. The
// zero value is not ready: call Reset. Not safe for concurrent use; it allocates nothing
// but a reason.
type StatusScanner struct {
	statusState
	scan
}

// statusState is a StatusScanner's own state, reset as a whole (the scan's buffer is
// not: scan.reset).
type statusState struct {
	lay   replyLayout
	st    Status
	known bool
}

// Reset starts reading the first reply message of a call of method m (nil for anything
// that is not a MilvusService method: nothing to read).
func (s *StatusScanner) Reset(m *Method) {
	s.statusState = statusState{}
	s.scan.reset()
	s.start(m)
}

func (s *StatusScanner) start(m *Method) {
	if m != nil {
		s.lay = m.reply
	}
	if !s.lay.self && s.lay.status == 0 {
		s.known, s.done = true, true
	}
}

// Write reads the next bytes of the response stream. It returns true once there is nothing
// more to learn.
func (s *StatusScanner) Write(p []byte) (done bool) {
	if msg, ok := s.input(p); ok {
		s.feed(msg)
	}
	return s.done
}

// Result returns the status read and whether it is known: read whole, or certainly absent
// (a success). A reply that never came, or was cut short before its status, is not known.
func (s *StatusScanner) Result() (Status, bool) { return s.st, s.known }

// ReadStatus reads the Status of msg, a reply message of method m or its first bytes
// (whole is false): StatusScanner without the gRPC framing.
func ReadStatus(m *Method, msg []byte, whole bool) (Status, bool) {
	var s StatusScanner
	s.start(m)
	if s.unframed(msg, whole) {
		s.feed(msg)
	}
	return s.Result()
}

func (s *StatusScanner) feed(p []byte) {
	// The Status's own fields are at depth 0 when the reply is one, 1 inside its field.
	depth := 1
	if s.lay.self {
		depth = 0
	}
	for !s.done {
		k := s.w.next(&p)
		ev := &s.w.ev
		switch {
		case k == evMore:
			return
		case k == evBad:
			s.done = true
		case k == evEnd, k == evLeave:
			s.known, s.done = true, true
		case k == evField && ev.depth < depth:
			if ev.num == s.lay.status && ev.typ == protowire.BytesType {
				s.w.decide(enterValue, 0)
			} else if ev.num > s.lay.status {
				// Past the status field: absent, a success.
				s.known, s.done = true, true
			}
		case k == evField:
			s.statusField(ev)
		case k == evValue:
			s.st.Reason = SafeReason(string(cutRunes(ev.b, ev.whole)))
		}
	}
}

func (s *StatusScanner) statusField(ev *event) {
	varint := ev.typ == protowire.VarintType
	switch {
	case ev.num == statusErrorCode && varint:
		s.st.ErrorCode = int32(ev.v)
	case ev.num == statusReason && ev.typ == protowire.BytesType:
		s.w.decide(takeValue, MaxReason)
	case ev.num == statusCode && varint:
		s.st.Code = int32(ev.v)
	case ev.num == statusRetriable && varint:
		s.st.Retriable = ev.v != 0
	case ev.num > statusRetriable:
		s.known, s.done = true, true
	}
}

// cutRunes drops a character cut in two at the end of b when b is not whole.
func cutRunes(b []byte, whole bool) []byte {
	if whole {
		return b
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
