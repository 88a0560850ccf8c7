package dataplane_test

import (
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/milvus-lb/milvus-lb/internal/testkit/fakemilvus"
)

// Every unary MilvusService RPC (114 of the 116; the two streams have their own test)
// passes through, with its request and response types, and reaches the backend.
func TestEveryUnaryRPC(t *testing.T) {
	bs := startBackends(t, 1, fakemilvus.Options{})
	l := newLB(t, bs, nil)
	_, cc := l.dial()
	sd := milvuspb.File_milvus_proto.Services().ByName("MilvusService")
	ctx := ctxTimeout(t, 60*time.Second)
	unary := 0
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		if md.IsStreamingClient() || md.IsStreamingServer() {
			continue
		}
		unary++
		method := "/milvus.proto.milvus.MilvusService/" + string(md.Name())
		req := dynamicpb.NewMessage(md.Input())
		setString(req, "collection_name", "c1")
		resp := dynamicpb.NewMessage(md.Output())
		var hdr metadata.MD
		ictx := metadata.AppendToOutgoingContext(ctx, "dbname", "default")
		if err := cc.Invoke(ictx, method, req, resp, grpc.Header(&hdr)); err != nil {
			t.Errorf("%s: %v", md.Name(), err)
			continue
		}
		if got := hdr.Get(fakemilvus.BackendHeader); len(got) != 1 || got[0] != "b0" {
			t.Errorf("%s: response header %s = %q", md.Name(), fakemilvus.BackendHeader, got)
		}
		if n := bs[0].Count(method); n != 1 {
			t.Errorf("%s: backend counted %d calls, want 1", md.Name(), n)
		}
	}
	if unary != 114 {
		t.Errorf("%d unary methods, want 114", unary)
	}
}

func setString(m *dynamicpb.Message, name string, v string) {
	if fd := m.Descriptor().Fields().ByName(protoreflect.Name(name)); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
		m.Set(fd, protoreflect.ValueOfString(v))
	}
}
