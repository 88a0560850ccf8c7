package milvus

import (
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

// rateLimited is the Status Milvus 2.6 sends for a rate-limited call (merr.Status of
// ErrServiceRateLimit: code 8, the legacy RateLimit beside it, retriable).
var rateLimited = &commonpb.Status{ErrorCode: commonpb.ErrorCode_RateLimit, Code: 8, Retriable: true,
	Reason: "rate limit exceeded[rate=10]", Detail: "rate limit exceeded[rate=10]: a longer detail"}

var statusCases = []struct {
	name, method string
	msg          proto.Message
	want         Status
}{
	{"search ok", "Search", &milvuspb.SearchResults{Status: &commonpb.Status{}, Results: &schemapb.SearchResultData{NumQueries: 1, TopK: 10}, CollectionName: "books"}, Status{}},
	{"search no status", "Search", &milvuspb.SearchResults{CollectionName: "books"}, Status{}},
	{"search rate limited", "Search", &milvuspb.SearchResults{Status: rateLimited}, Status{Code: 8, ErrorCode: 49, Reason: "rate limit exceeded[rate=10]", Retriable: true}},
	{"insert not found", "Insert", &milvuspb.MutationResult{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_CollectionNotExists, Code: 100, Reason: "collection not found[collection=books]"}},
		Status{Code: 100, ErrorCode: 4, Reason: "collection not found[collection=books]"}},
	// The reply is a Status itself.
	{"create collection", "CreateCollection", &commonpb.Status{ErrorCode: commonpb.ErrorCode_NotReadyServe, Code: 1, Reason: "service not ready", Retriable: true},
		Status{Code: 1, ErrorCode: 56, Reason: "service not ready", Retriable: true}},
	// An old server: the legacy code only.
	{"legacy", "DropCollection", &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Reason: "boom"}, Status{ErrorCode: 1, Reason: "boom"}},
	// ComponentStates carries its status in field 3.
	{"component states", "GetComponentStates", &milvuspb.ComponentStates{State: &milvuspb.ComponentInfo{Role: "proxy"}, Status: &commonpb.Status{Code: 2, ErrorCode: 1, Reason: "unavailable"}},
		Status{Code: 2, ErrorCode: 1, Reason: "unavailable"}},
	// A reason is cut at 200 bytes, between characters.
	{"long reason", "Query", &milvuspb.QueryResults{Status: &commonpb.Status{Code: 1100, ErrorCode: 5, Reason: strings.Repeat("x", 199) + "éé" + strings.Repeat("y", 5000)}},
		Status{Code: 1100, ErrorCode: 5, Reason: strings.Repeat("x", 199)}},
	// What Milvus quotes of the request in a reason is cut off (SafeReason).
	{"quoted filter", "Query", &milvuspb.QueryResults{Status: &commonpb.Status{Code: 1100, ErrorCode: 5, Reason: "cannot parse expression: note == \"secret\", error: bad"}},
		Status{Code: 1100, ErrorCode: 5, Reason: "cannot parse expression: …"}},
	{"no status field", "Dummy", &milvuspb.DummyResponse{Response: "x"}, Status{}},
}

func TestReadStatus(t *testing.T) {
	var s StatusScanner
	for _, c := range statusCases {
		b, err := proto.Marshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		m := Lookup(ServicePrefix + c.method)
		if got, known := ReadStatus(m, b, true); got != c.want || !known {
			t.Errorf("%s: ReadStatus = %+v, %v; want %+v, true", c.name, got, known, c.want)
		}
		for _, size := range []int{1, 5, 64, 16384} {
			s.Reset(m)
			inPieces(b, size, s.Write)
			if got, known := s.Result(); got != c.want || !known {
				t.Errorf("%s in %d-byte pieces: %+v, %v; want %+v, true", c.name, size, got, known, c.want)
			}
		}
	}
}

func TestReadStatusPrefix(t *testing.T) {
	// A 1 MiB Search reply: its status is told by the first bytes.
	res := &milvuspb.SearchResults{Status: rateLimited, Results: &schemapb.SearchResultData{Scores: make([]float32, 1<<18)}}
	b, _ := proto.Marshal(res)
	m := Lookup(ServicePrefix + "Search")
	var s StatusScanner
	s.Reset(m)
	if !s.Write(append(frameOf(b), b[:200]...)) {
		t.Error("the status scanner is not done after the status")
	}
	if got, known := s.Result(); !known || got.Code != 8 {
		t.Errorf("from 200 bytes: %+v, %v; want code 8, known", got, known)
	}
	// Cut before the code: not known.
	if _, known := ReadStatus(m, b[:10], false); known {
		t.Error("a status cut before its code is reported known")
	}
	// A reply that never came tells nothing.
	s.Reset(m)
	if _, known := s.Result(); known {
		t.Error("no reply bytes, yet the status is known")
	}
}

func TestCodeName(t *testing.T) {
	for _, c := range []struct {
		code, errorCode int32
		want            string
	}{
		{0, 0, "Success"},
		{8, 49, "ServiceRateLimit"},
		{1, 56, "ServiceNotReady"},
		{100, 4, "CollectionNotFound"},
		{0, 49, "RateLimit"}, // an old server
		{0, 1, "UnexpectedError"},
		{123456, 1, "Other"},
		{0, 9999, "Other"},
		{65535, 1, "Unexpected"},
	} {
		if got := CodeName(c.code, c.errorCode); got != c.want {
			t.Errorf("CodeName(%d, %d) = %q, want %q", c.code, c.errorCode, got, c.want)
		}
	}
	for code, n := range codeNames {
		if n == "" || strings.ContainsAny(n, " _-") || CodeName(code, 0) != n {
			t.Errorf("code %d is named %q", code, n)
		}
	}
}
