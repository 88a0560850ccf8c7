package accesslog

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// TestNamesArePlain: the values written as they are (kName) are printable ASCII without
// quotes, backslashes, spaces or '=', whatever status a reply carries.
func TestNamesArePlain(t *testing.T) {
	var names []string
	for code := int32(-1); code < 70000; code++ {
		names = append(names, milvus.CodeName(code, 0), milvus.CodeName(0, code))
	}
	for c := range 40 {
		names = append(names, grpcStatus(&call.Record{GRPC: true, Code: codes.Code(c)}))
	}
	for v := range uint16(0x0400) {
		names = append(names, tlsVersion(v))
	}
	for _, s := range names {
		for i := range len(s) {
			if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
				t.Fatalf("name %q holds %q", s, c)
			}
		}
	}
}
