package relay

import (
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// The table-driven checks say what x/net's say, for every byte at every position of a
// word and past the last whole word.
func TestFieldChecksAgreeWithHTTPGuts(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := range n {
			for b := range 256 {
				s := []byte(strings.Repeat("a", n))
				s[pos] = byte(b)
				v := string(s)
				if got, want := validFieldValue(v), httpguts.ValidHeaderFieldValue(v); got != want {
					t.Fatalf("validFieldValue(%q) = %v, httpguts says %v", v, got, want)
				}
				want := true
				for _, r := range v {
					want = want && httpguts.IsTokenRune(r) && !('A' <= r && r <= 'Z')
				}
				if got := validFieldName(v); got != want {
					t.Fatalf("validFieldName(%q) = %v, want %v", v, got, want)
				}
			}
		}
	}
	if validFieldName("") || !validFieldValue("") {
		t.Fatal("empty name valid or empty value invalid")
	}
}

func BenchmarkFieldChecks(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = validFieldName("user-agent") && validFieldValue("grpc-go/1.85.0") &&
			validFieldValue("/milvus.proto.milvus.MilvusService/Search")
	}
}
