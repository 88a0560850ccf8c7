package router

import (
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

func TestMatch(t *testing.T) {
	routes := []config.Route{
		{Host: "milvus-demo.milvus.io", Path: "/", PathType: config.PathPrefix, Backend: "demo-root"},
		{Host: "milvus-demo.milvus.io", Path: "/v2/vectordb", PathType: config.PathPrefix, Backend: "demo-rest"},
		{Host: "milvus-demo.milvus.io", Path: "/v2/vectordb/collections/list", PathType: config.PathExact, Backend: "demo-list"},
		{Host: "*.milvus.io", Path: "/", PathType: config.PathPrefix, Backend: "wild"},
		{Host: "", Path: "/healthz", PathType: config.PathExact, Backend: "any-healthz"},
	}
	var entries []*Entry[string]
	for _, r := range routes {
		entries = append(entries, &Entry[string]{Route: r, Target: r.Backend})
	}
	tab := New(entries)
	cases := []struct {
		host, path, want string
	}{
		{"milvus-demo.milvus.io", "/milvus.proto.milvus.MilvusService/Search", "demo-root"},
		{"milvus-demo.milvus.io:443", "/milvus.proto.milvus.MilvusService/Search", "demo-root"},
		{"MILVUS-DEMO.milvus.io.", "/x", "demo-root"},
		{"milvus-demo.milvus.io", "/v2/vectordb/entities/search", "demo-rest"},
		{"milvus-demo.milvus.io", "/v2/vectordb", "demo-rest"},
		{"milvus-demo.milvus.io", "/v2/vectordbx", "demo-root"}, // element-wise prefix
		{"milvus-demo.milvus.io", "/v2/vectordb/collections/list", "demo-list"},
		{"other.milvus.io", "/anything", "wild"},
		{"a.b.milvus.io", "/anything", ""}, // a wildcard covers one label
		{"unknown.example", "/healthz", "any-healthz"},
		{"unknown.example", "/other", ""},
	}
	for _, c := range cases {
		got := ""
		if e := tab.Match(c.host, c.path); e != nil {
			got = e.Target
		}
		if got != c.want {
			t.Errorf("Match(%q, %q) = %q, want %q", c.host, c.path, got, c.want)
		}
	}
}

// A MultiLabel wildcard (the Gateway API's) covers any number of labels; the longest
// matching suffix wins, and an Ingress's one-label wildcard is not widened by it.
func TestMultiLabelWildcard(t *testing.T) {
	routes := []config.Route{
		{Host: "*.bar.com", MultiLabel: true, Path: "/", PathType: config.PathPrefix, Backend: "bar"},
		{Host: "*.foo.bar.com", MultiLabel: true, Path: "/", PathType: config.PathPrefix, Backend: "foo-bar"},
		{Host: "*.milvus.io", Path: "/", PathType: config.PathPrefix, Backend: "ingress-wild"},
	}
	var entries []*Entry[string]
	for _, r := range routes {
		entries = append(entries, &Entry[string]{Route: r, Target: r.Backend})
	}
	tab := New(entries)
	for _, c := range []struct{ host, want string }{
		{"a.bar.com", "bar"},
		{"multiple.prefixes.bar.com", "bar"},
		{"a.foo.bar.com", "foo-bar"},
		{"x.a.foo.bar.com", "foo-bar"},
		{"bar.com", ""},
		{"a.milvus.io", "ingress-wild"},
		{"a.b.milvus.io", ""},
	} {
		got := ""
		if e := tab.Match(c.host, "/x"); e != nil {
			got = e.Target
		}
		if got != c.want {
			t.Errorf("Match(%q) = %q, want %q", c.host, got, c.want)
		}
	}
}
