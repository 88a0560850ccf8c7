package router

import (
	"net"
	"testing"
)

// HostOnly must agree with net.SplitHostPort, which it replaces on the hot path.
func TestHostOnlyAgreesWithSplitHostPort(t *testing.T) {
	for _, h := range []string{
		"milvus-demo.milvus.io", "milvus-demo.milvus.io:443", "milvus-demo.milvus.io:",
		"127.0.0.1", "127.0.0.1:19530", "[::1]", "[::1]:443", "[::1]:", "::1", "a:b:c",
		"[fe80::1%eth0]:80", "[::1]:443:1", "", ":443", "[", "]:1",
	} {
		want := h
		if host, _, err := net.SplitHostPort(h); err == nil {
			want = host
		}
		if got := HostOnly(h); got != want {
			t.Errorf("HostOnly(%q) = %q, net.SplitHostPort says %q", h, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = HostOnly("milvus-demo.milvus.io") }); n != 0 {
		t.Errorf("HostOnly allocates %v times per call", n)
	}
}
