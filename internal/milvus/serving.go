package milvus

import "github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

// The common.Status codes (Milvus 2.3 and later, pkg/util/merr) that say the proxy itself
// is not serving, whatever was asked: ErrServiceNotReady (1: starting, stopping or
// abnormal; merr.CheckHealthy answers it for any state but Healthy) and
// ErrServiceUnavailable (2). Every other code is about the request or the data (a missing
// collection, a rate limit, a quota): another proxy of the same cluster would answer the
// same, so it is never a reason to stop sending calls to this one.
const (
	codeServiceNotReady    = 1
	codeServiceUnavailable = 2
)

// NotServing reports whether a reply's common.Status (its code and legacy error_code)
// says that the proxy that sent it is not serving: the reply of a proxy that should get
// no calls for now. Servers older than 2.3 set only error_code, to NotReadyServe.
func NotServing(code, errorCode int32) bool {
	switch code {
	case codeServiceNotReady, codeServiceUnavailable:
		return true
	case 0:
		return commonpb.ErrorCode(errorCode) == commonpb.ErrorCode_NotReadyServe
	}
	return false
}
