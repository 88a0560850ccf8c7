package milvus

import "testing"

func TestLookup(t *testing.T) {
	// MilvusService in milvus-io/milvus-proto proto/milvus.proto (v2.6.18, as go.mod pins it):
	// 116 methods, two of them streaming.
	if n := Methods(); n != 116 {
		t.Errorf("Methods() = %d, want 116", n)
	}
	if m := Lookup("/milvus.proto.milvus.MilvusService/Search"); m == nil || m.Name != "Search" || m.Streaming {
		t.Errorf("Lookup(Search) = %+v", m)
	}
	for _, s := range []string{"DumpMessages", "CreateReplicateStream"} {
		if m := Lookup(ServicePrefix + s); m == nil || !m.Streaming {
			t.Errorf("Lookup(%s) = %+v, want streaming", s, m)
		}
	}
	for _, p := range []string{"/grpc.health.v1.Health/Check", "/v2/vectordb/collections/list", ServicePrefix + "NoSuch", ""} {
		if m := Lookup(p); m != nil {
			t.Errorf("Lookup(%q) = %+v, want nil", p, m)
		}
	}
}
