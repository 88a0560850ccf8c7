package milvus

import (
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// RateLimitCode is the Milvus error code (merr) of a refused rate: Milvus's proxy answers
// a call over its quota with merr.ErrServiceRateLimit, code 8, retriable, whose legacy
// error_code is commonpb.ErrorCode_RateLimit. pymilvus retries on either
// (decorators.py: ErrorCode.RATE_LIMIT or common_pb2.RateLimit); the Go SDK's
// milvusclient.RetryOnRateLimitInterceptor on the legacy one, when the application
// installs it (client/v2 v2.6.2 defines it but leaves it out of its dial options).
const RateLimitCode = 8

// statusReply is where each method's reply carries its Status: -1 when the reply is a
// common.Status, 0 when it has none, else the field number (from the descriptors).
var statusReply = func() map[string]protowire.Number {
	sd := serviceDescriptor().Methods()
	out := make(map[string]protowire.Number, sd.Len())
	for i := range sd.Len() {
		md := sd.Get(i)
		o := md.Output()
		switch fd := o.Fields().ByName("status"); {
		case o.FullName() == "milvus.proto.common.Status":
			out[string(md.Name())] = -1
		case fd != nil && !fd.IsList() && fd.Message() != nil && fd.Message().FullName() == "milvus.proto.common.Status":
			out[string(md.Name())] = fd.Number()
		}
	}
	return out
}()

// RateLimited is the reply message Milvus sends for a call of m that is over a rate limit:
// m's own response type with a Status of RateLimitCode, retriable, and reason; serialized,
// ready to frame as a gRPC message sent with grpc-status 0. nil when m's reply has no
// Status, or m is nil: such a call is answered with a gRPC status instead.
func RateLimited(m *Method, reason string) []byte {
	if m == nil {
		return nil
	}
	num := statusReply[m.Name]
	if num == 0 {
		return nil
	}
	st, err := proto.Marshal(&commonpb.Status{
		ErrorCode: commonpb.ErrorCode_RateLimit,
		Reason:    reason,
		Code:      RateLimitCode,
		Retriable: true,
		Detail:    reason,
	})
	if err != nil || num < 0 {
		return st
	}
	out := protowire.AppendTag(make([]byte, 0, len(st)+4), num, protowire.BytesType)
	return protowire.AppendBytes(out, st)
}
