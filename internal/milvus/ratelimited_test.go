package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Every method's rate-limit reply decodes as its own response type, with the Status a
// client checks: what pymilvus and the Go SDK read from Milvus's own refusals.
func TestRateLimitedForEveryMethod(t *testing.T) {
	const reason = `rate limit exceeded: milvus-lb rate limit "reads"`
	sd := serviceDescriptor().Methods()
	none := 0
	for i := range sd.Len() {
		md := sd.Get(i)
		m := Lookup(ServicePrefix + string(md.Name()))
		b := RateLimited(m, reason)
		if b == nil {
			none++
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		reply := mt.New().Interface()
		if err := proto.Unmarshal(b, reply); err != nil {
			t.Errorf("%s: %v", md.Name(), err)
			continue
		}
		st, ok := reply.(*commonpb.Status)
		if !ok {
			fd := reply.ProtoReflect().Descriptor().Fields().ByName("status")
			st, _ = reply.ProtoReflect().Get(fd).Message().Interface().(*commonpb.Status)
		}
		if st.GetCode() != RateLimitCode || st.GetErrorCode() != commonpb.ErrorCode_RateLimit || !st.GetRetriable() || st.GetReason() != reason {
			t.Errorf("%s: status %v", md.Name(), st)
		}
	}
	// The replies without a Status (research/milvus_methods.txt).
	if none > 3 {
		t.Errorf("%d methods have no rate-limit reply", none)
	}
}

func TestRateLimitedSearch(t *testing.T) {
	var r milvuspb.SearchResults
	if err := proto.Unmarshal(RateLimited(Lookup(ServicePrefix+"Search"), "x"), &r); err != nil {
		t.Fatal(err)
	}
	if r.GetStatus().GetErrorCode() != commonpb.ErrorCode_RateLimit {
		t.Errorf("SearchResults status %v", r.GetStatus())
	}
	if RateLimited(nil, "x") != nil {
		t.Error("a reply for an unknown method")
	}
}
