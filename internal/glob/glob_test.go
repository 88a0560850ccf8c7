package glob

import "testing"

func TestWildMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"/milvus.proto.milvus.MilvusService/*", "/milvus.proto.milvus.MilvusService/Search", false, true},
		{"/milvus.proto.milvus.MilvusService/*", "/milvus.proto.milvus.MilvusService", false, false},
		{"/milvus.proto.milvus.MilvusService/*Search", "/milvus.proto.milvus.MilvusService/HybridSearch", false, true},
		{"/milvus.proto.milvus.MilvusService/*search", "/milvus.proto.milvus.MilvusService/Search", false, false},
		{"*.milvus.io", "a.b.milvus.io", true, true},
		{"*.MILVUS.io", "A.milvus.IO", true, true},
		{"tenant-?", "tenant-a", false, true},
		{"tenant-?", "tenant-ab", false, false},
		{"tenant-?", "tenant-", false, false},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"*", "", false, true},
		{"**", "x", false, true},
		{"", "", false, true},
		{"", "x", false, false},
	}
	for _, c := range cases {
		if got := New(c.pat, c.fold).Match(c.s); got != c.want {
			t.Errorf("%q matches %q (fold %v) = %v, want %v", c.pat, c.s, c.fold, got, c.want)
		}
	}
}
