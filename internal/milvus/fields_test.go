package milvus

import (
	"encoding/binary"
	"slices"
	"sort"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func kv(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }

// pymilvusSearch is a Search as pymilvus builds it (client/prepare.py): nq and the
// "topk" search parameter beside the vectors, the consistency level when one is given.
func pymilvusSearch(nq, dim int, level commonpb.ConsistencyLevel, useDefault bool) *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{
		DbName: "db1", CollectionName: "books", OutputFields: []string{"title"},
		Dsl: "year > 2000", DslType: commonpb.DslType_BoolExprV1,
		SearchInput:      &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: make([]byte, nq*dim*4+16)},
		SearchParams:     []*commonpb.KeyValuePair{kv("topk", "10"), kv("round_decimal", "-1"), kv("ignore_growing", "false"), kv("params", `{"nprobe": 16}`), kv("anns_field", "vec"), kv("metric_type", "L2")},
		Nq:               int64(nq),
		ConsistencyLevel: level, UseDefaultConsistency: useDefault,
		GuaranteeTimestamp: 1,
	}
}

func insert(rows, dim int) *milvuspb.InsertRequest {
	return &milvuspb.InsertRequest{CollectionName: "books", NumRows: uint32(rows), FieldsData: []*schemapb.FieldData{{
		FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: make([]float32, rows*dim)}}}}}}}
}

var requestCases = []struct {
	name, method string
	msg          proto.Message
	want         Request
}{
	{"search", "Search", pymilvusSearch(1, 768, commonpb.ConsistencyLevel_Bounded, false),
		Request{Names: Names{"db1", "books"}, Consistency: "Bounded", Guarantee: 1, NQ: 1, TopK: 10}},
	// pymilvus without a consistency_level: the collection's default, not in the request.
	{"search default level", "Search", pymilvusSearch(10, 768, 0, true),
		Request{Names: Names{"db1", "books"}, Guarantee: 1, NQ: 10, TopK: 10}},
	// Neither field: Milvus reads Strong (the enum's zero).
	{"search strong", "Search", pymilvusSearch(2, 8, commonpb.ConsistencyLevel_Strong, false),
		Request{Names: Names{"db1", "books"}, Consistency: "Strong", Guarantee: 1, NQ: 2, TopK: 10}},
	// The Go SDK: topk among other parameters, in map order.
	{"search go sdk", "Search", &milvuspb.SearchRequest{CollectionName: "books", Nq: 3,
		SearchParams:     []*commonpb.KeyValuePair{kv("anns_field", "v"), kv("params", "{}"), kv("topk", "100"), kv("offset", "0")},
		ConsistencyLevel: commonpb.ConsistencyLevel_Eventually},
		Request{Names: Names{"", "books"}, Consistency: "Eventually", NQ: 3, TopK: 100}},
	{"query", "Query", &milvuspb.QueryRequest{DbName: "db2", CollectionName: "books", Expr: "id in [1]", ConsistencyLevel: commonpb.ConsistencyLevel_Session},
		Request{Names: Names{"db2", "books"}, Consistency: "Session"}},
	// pymilvus's Session read after a write: guarantee_timestamp is that write's timestamp.
	{"query after a write", "Query", &milvuspb.QueryRequest{CollectionName: "books", Expr: "id > 0", GuaranteeTimestamp: 463_000_000_000_000_000, ConsistencyLevel: commonpb.ConsistencyLevel_Session},
		Request{Names: Names{"", "books"}, Consistency: "Session", Guarantee: 463_000_000_000_000_000}},
	{"hybrid", "HybridSearch", &milvuspb.HybridSearchRequest{CollectionName: "books", Requests: []*milvuspb.SearchRequest{pymilvusSearch(1, 4, 0, false)}, ConsistencyLevel: commonpb.ConsistencyLevel_Bounded},
		Request{Names: Names{"", "books"}, Consistency: "Bounded"}},
	// num_rows comes after the data.
	{"insert", "Insert", insert(1000, 768), Request{Names: Names{"", "books"}, Rows: 1000}},
	{"upsert", "Upsert", &milvuspb.UpsertRequest{DbName: "db3", CollectionName: "books", NumRows: 7}, Request{Names: Names{"db3", "books"}, Rows: 7}},
	// Field numbers differ per message: collection_name=2, db_name=4.
	{"load state", "GetLoadState", &milvuspb.GetLoadStateRequest{CollectionName: "books", DbName: "db2"}, Request{Names: Names{"db2", "books"}}},
	// Import: collection_name=1, db_name=7.
	{"import", "Import", &milvuspb.ImportRequest{CollectionName: "books", DbName: "db3", Files: []string{"a.json"}}, Request{Names: Names{"db3", "books"}}},
	// camelCase field names.
	{"camel case", "GetQuerySegmentInfo", &milvuspb.GetQuerySegmentInfoRequest{DbName: "db4", CollectionName: "books"}, Request{Names: Names{"db4", "books"}}},
	{"drop database", "DropDatabase", &milvuspb.DropDatabaseRequest{DbName: "db5"}, Request{Names: Names{"db5", ""}}},
	{"version", "GetVersion", &milvuspb.GetVersionRequest{}, Request{}},
}

// encodings are a request as Go encodes it (oneof members last: the Go SDK's Search
// vectors) and with every field in number order (as pymilvus's encoder writes them).
func encodings(t testing.TB, msg proto.Message) map[string][]byte {
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"go": b, "number order": numberOrder(b)}
}

// numberOrder puts the top-level fields of a valid message in number order.
func numberOrder(b []byte) []byte {
	type field struct {
		num protowire.Number
		b   []byte
	}
	var fields []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if n < 0 || m < 0 {
			panic("numberOrder: not a valid message")
		}
		fields = append(fields, field{num, b[:n+m]})
		b = b[n+m:]
	}
	slices.SortStableFunc(fields, func(a, b field) int { return int(a.num) - int(b.num) })
	var out []byte
	for _, f := range fields {
		out = append(out, f.b...)
	}
	return out
}

func TestReadRequest(t *testing.T) {
	for _, c := range requestCases {
		m := Lookup(ServicePrefix + c.method)
		for enc, b := range encodings(t, c.msg) {
			got, known := ReadRequest(m, b, true, AllFields)
			if got != c.want || known != AllFields {
				t.Errorf("%s (%s): ReadRequest = %+v, %b; want %+v, all known", c.name, enc, got, known, c.want)
			}
			// The names are in the first bytes: a short prefix of a 3 MiB insert tells
			// them; what it tells of the rest is right, if anything.
			if len(b) > 4096 {
				got, known := ReadRequest(m, b[:256], false, AllFields)
				if got.Names != c.want.Names || known&FieldNames != FieldNames || !sameKnown(got, c.want, known) {
					t.Errorf("%s (%s) prefix: %+v (known %b), want %+v", c.name, enc, got, known, c.want)
				}
			}
			if got, complete := ReadNames(m, b); got != c.want.Names || !complete {
				t.Errorf("%s (%s): ReadNames = %+v, %v; want %+v, true", c.name, enc, got, complete, c.want.Names)
			}
		}
	}
	// pymilvus's Search: nq, topk and the level come after the vectors.
	b := numberOrder(must(proto.Marshal(pymilvusSearch(10, 768, commonpb.ConsistencyLevel_Bounded, false))))
	m := Lookup(ServicePrefix + "Search")
	got, known := ReadRequest(m, b[:4096], false, AllFields)
	if want := FieldNames | AllFields&^m.request.has; known != want || got.NQ != 0 {
		t.Errorf("pymilvus Search, first 4 KiB: %+v, known %b; want the names only (and rows, which Search lacks)", got, known)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// frameOf is msg as a gRPC stream carries it: a 5-byte prefix, then the message.
func frameOf(msg []byte) []byte {
	return binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))[:5:5]
}

// TestRequestScannerPieces feeds each request as the data path does, in DATA frames of
// any size, and expects what the whole message tells.
func TestRequestScannerPieces(t *testing.T) {
	var s RequestScanner
	for _, c := range requestCases {
		b := numberOrder(must(proto.Marshal(c.msg)))
		stream := append(frameOf(b), b...)
		stream = append(stream, frameOf(b)...) // a second message must not be read
		for _, size := range []int{1, 3, 7, 100, 16384, len(stream)} {
			m := Lookup(ServicePrefix + c.method)
			s.Reset(m, AllFields)
			done := false
			for p := stream; len(p) > 0 && !done; {
				k := min(size, len(p))
				done, p = s.Write(p[:k]), p[k:]
			}
			got, known := s.Result()
			if !done || got != c.want || known != AllFields {
				t.Errorf("%s in %d-byte pieces: %+v, known %b, done %v; want %+v, all known, done", c.name, size, got, known, done, c.want)
			}
		}
	}
}

// TestRequestScannerUsedAgain: a relayed connection's scanner reads the same names call
// after call; it hands out the strings it has (no allocation) and a new name when the
// next call's differs.
func TestRequestScannerUsedAgain(t *testing.T) {
	m := Lookup(ServicePrefix + "Search")
	streamOf := func(db, coll string) []byte {
		b := numberOrder(must(proto.Marshal(&milvuspb.SearchRequest{DbName: db, CollectionName: coll, Nq: 1})))
		return append(frameOf(b), b...)
	}
	var s RequestScanner
	read := func(stream []byte) Names {
		s.Reset(m, AllFields)
		s.Write(stream)
		got, _ := s.Result()
		return got.Names
	}
	books := streamOf("shop", "books")
	read(books)
	if n := testing.AllocsPerRun(100, func() { read(books) }); n != 0 {
		t.Errorf("reading the same names again: %v allocations, want 0", n)
	}
	for _, c := range []struct{ db, coll string }{{"shop", "films"}, {"shop", "books"}, {"", "books"}, {"archive", "books"}} {
		if got := read(streamOf(c.db, c.coll)); got.DB != c.db || got.Collection != c.coll {
			t.Errorf("after other calls: %+v, want %s.%s", got, c.db, c.coll)
		}
	}
}

func TestRequestScannerStopsEarly(t *testing.T) {
	b, _ := proto.Marshal(insert(10000, 128))
	var s RequestScanner
	s.Reset(Lookup(ServicePrefix+"Insert"), FieldNames)
	stream := append(frameOf(b), b[:100]...)
	if !s.Write(stream) {
		t.Fatal("a scanner wanting only the names is not done after the first 100 bytes of an Insert")
	}
	if got, _ := s.Result(); got.Collection != "books" {
		t.Errorf("collection %q, want books", got.Collection)
	}
}

func TestRequestScannerUnreadable(t *testing.T) {
	b, _ := proto.Marshal(&milvuspb.SearchRequest{CollectionName: "books", Nq: 1})
	var s RequestScanner
	m := Lookup(ServicePrefix + "Search")

	compressed := append(frameOf(b), b...)
	compressed[0] = 1
	s.Reset(m, AllFields)
	if !s.Write(compressed) {
		t.Error("a compressed message is not done at once")
	}
	if got, known := s.Result(); got != (Request{}) || known != AllFields&^m.request.has {
		t.Errorf("compressed: %+v, known %b; want nothing known of what Search carries", got, known)
	}

	s.Reset(m, AllFields)
	garbage := []byte{0, 0, 0, 0, 3, 0xff, 0xff, 0xff}
	if !s.Write(garbage) {
		t.Error("a message cut inside a field is not done when its bytes are all given")
	}

	// A name longer than Milvus allows is not read, and not claimed known.
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	b, _ = proto.Marshal(&milvuspb.SearchRequest{DbName: "db", CollectionName: string(long), Nq: 4})
	got, known := ReadRequest(m, b, true, AllFields)
	if known&FieldCollection != 0 || got.Collection != "" || got.DB != "db" || got.NQ != 4 {
		t.Errorf("300-byte collection name: %+v, known %b; want it unknown and the rest read", got, known)
	}
}

func TestReadNamesTruncated(t *testing.T) {
	b, _ := proto.Marshal(&milvuspb.SearchRequest{DbName: "db1", CollectionName: "books"})
	m := Lookup(ServicePrefix + "Search")
	got, complete := ReadNames(m, b[:len(b)-2])
	if complete || got.DB != "db1" || got.Collection != "" {
		t.Errorf("truncated: %+v, %v; want db1 only and incomplete", got, complete)
	}
	if _, complete := ReadNames(m, []byte{0xff, 0xff, 0xff}); complete {
		t.Error("garbage reported complete")
	}
}

// TestRequestFieldsFromDescriptors pins which methods carry which counts, read from
// milvus-proto: a new version that moves them shows here.
func TestRequestFieldsFromDescriptors(t *testing.T) {
	want := map[Fields][]string{
		FieldConsistency: {"CreateCollection", "Delete", "HybridSearch", "Query", "Search"},
		FieldRows:        {"Insert", "Upsert"},
		FieldNQ:          {"Search"},
		FieldTopK:        {"Search"},
	}
	for f, names := range want {
		var got []string
		for n, m := range methods {
			if m.request.has&f != 0 {
				got = append(got, n)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, names) {
			t.Errorf("field %b is carried by %v, want %v", f, got, names)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, s := range []string{"0", "10", "-5", "+7", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "", "-", "1e3", " 1", "007"} {
		got, ok := parseInt([]byte(s))
		want, err := strconvParseInt(s)
		if got != want || ok != (err == nil) {
			t.Errorf("parseInt(%q) = %d, %v; strconv says %d, %v", s, got, ok, want, err)
		}
	}
}

// TestTopK: Milvus takes the first pair named topk; a long pair before it (params JSON)
// is passed over, a value too long to be a number is not claimed known.
func TestTopK(t *testing.T) {
	long := `{"nprobe": 16, "radius": 0.5, "range_filter": 0.9, "hints": "iterative_filter", "ef": 64}`
	for _, c := range []struct {
		name   string
		params []*commonpb.KeyValuePair
		topk   int64
		known  bool
	}{
		{"after a long pair", []*commonpb.KeyValuePair{kv("params", long), kv("topk", "7")}, 7, true},
		{"first wins", []*commonpb.KeyValuePair{kv("topk", "3"), kv("topk", "9")}, 3, true},
		{"no value", []*commonpb.KeyValuePair{{Key: "topk"}, kv("topk", "9")}, 0, true},
		{"not a number", []*commonpb.KeyValuePair{kv("topk", "ten")}, 0, true},
		{"too long", []*commonpb.KeyValuePair{kv("topk", "0000000000000000000000000000000000000000010")}, 0, false},
		{"none", []*commonpb.KeyValuePair{kv("metric_type", "L2")}, 0, true},
	} {
		b := must(proto.Marshal(&milvuspb.SearchRequest{CollectionName: "c", SearchParams: c.params, Nq: 1}))
		got, known := ReadRequest(Lookup(ServicePrefix+"Search"), b, true, FieldTopK)
		if got.TopK != c.topk || (known == FieldTopK) != c.known {
			t.Errorf("%s: topk %d, known %v; want %d, %v", c.name, got.TopK, known == FieldTopK, c.topk, c.known)
		}
	}
}
