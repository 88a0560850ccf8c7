package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
)

// A proxy that is starting or stopping says so in the status of its reply; errors about
// the request (a missing collection, a rate limit) must never look like it.
func TestNotServing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      int32
		errorCode commonpb.ErrorCode
		want      bool
	}{
		{"success", 0, commonpb.ErrorCode_Success, false},
		{"service not ready (merr 1)", 1, commonpb.ErrorCode_NotReadyServe, true},
		{"service unavailable (merr 2)", 2, commonpb.ErrorCode_UnexpectedError, true},
		{"legacy server: NotReadyServe only", 0, commonpb.ErrorCode_NotReadyServe, true},
		{"collection not found (merr 100)", 100, commonpb.ErrorCode_CollectionNotExists, false},
		{"rate limit (merr 8)", 8, commonpb.ErrorCode_RateLimit, false},
		{"too many requests (merr 4)", 4, commonpb.ErrorCode_UnexpectedError, false},
		{"quota exceeded (merr 9)", 9, commonpb.ErrorCode_ForceDeny, false},
		{"legacy: unexpected error", 0, commonpb.ErrorCode_UnexpectedError, false},
	} {
		if got := NotServing(tc.code, int32(tc.errorCode)); got != tc.want {
			t.Errorf("%s: NotServing(%d, %v) = %v, want %v", tc.name, tc.code, tc.errorCode, got, tc.want)
		}
	}
}
