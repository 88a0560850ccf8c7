package harness

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// The methods the workloads call.
const (
	searchMethod     = "/milvus.proto.milvus.MilvusService/Search"
	insertMethod     = "/milvus.proto.milvus.MilvusService/Insert"
	getVersionMethod = "/milvus.proto.milvus.MilvusService/GetVersion"
)

// Dim is the vector dimension of every workload (a common text-embedding size).
const Dim = 768

// TopK is the number of hits a Search asks for.
const TopK = 10

// encoded is a request message marshalled once and sent many times. The load generator
// must be cheap: encoding a 3 MiB insert per call would cost more CPU than a balancer
// spends forwarding it, and 32 copies of a 32 MiB insert would dwarf the balancer's RSS.
type encoded struct{ b []byte }

// response collects a reply's wire bytes into a buffer reused call after call. A
// workload's call sets tag to count the call's latency apart (loop).
type response struct {
	b   []byte
	tag bool
}

// rawCodec sends encoded messages without copying them (a SliceBuffer is never recycled
// by gRPC) and receives replies as bytes, so that checking a reply costs a memcmp.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*encoded)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*response)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	r.b = r.b[:0]
	for _, buf := range data {
		r.b = append(r.b, buf.ReadOnlyData()...)
	}
	return nil
}

// vectorBytes is n little-endian float32 values in [0, 1), seeded so runs are the same.
func randomFloats(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()
	}
	return v
}

// CachedSearchRequest is SearchRequest asking for Eventually consistency, which a reply
// cache may answer for as long as its maximum age.
func CachedSearchRequest() *milvuspb.SearchRequest {
	r := SearchRequest()
	r.UseDefaultConsistency, r.ConsistencyLevel = false, commonpb.ConsistencyLevel_Eventually
	return r
}

// SearchRequest is what pymilvus sends for client.search(collection, data=[one 768-dim
// vector], limit=10): the vector in a serialized PlaceholderGroup, the search parameters
// as key-value pairs, and nq=1.
func SearchRequest() *milvuspb.SearchRequest {
	rng := rand.New(rand.NewPCG(1, 2))
	vec := randomFloats(rng, Dim)
	raw := make([]byte, 4*Dim)
	for i, f := range vec {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	pg, err := proto.Marshal(&commonpb.PlaceholderGroup{Placeholders: []*commonpb.PlaceholderValue{{
		Tag: "$0", Type: commonpb.PlaceholderType_FloatVector, Values: [][]byte{raw},
	}}})
	if err != nil {
		panic(err)
	}
	return &milvuspb.SearchRequest{
		DbName:         "default",
		CollectionName: "bench",
		Dsl:            "",
		SearchInput:    &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: pg},
		DslType:        commonpb.DslType_BoolExprV1,
		OutputFields:   []string{"id"},
		SearchParams: []*commonpb.KeyValuePair{
			{Key: "anns_field", Value: "vector"},
			{Key: "topk", Value: strconv.Itoa(TopK)},
			{Key: "metric_type", Value: "COSINE"},
			{Key: "params", Value: `{"nprobe": 16}`},
			{Key: "round_decimal", Value: "-1"},
			{Key: "offset", Value: "0"},
		},
		GuaranteeTimestamp:    2,
		Nq:                    1,
		UseDefaultConsistency: true,
	}
}

// InsertRequest is what pymilvus sends for client.insert(collection, rows) with rows of
// an int64 primary key and a Dim-dim float vector.
func InsertRequest(rows int) *milvuspb.InsertRequest {
	return insertRows(rand.New(rand.NewPCG(3, 4)), 0, rows)
}

// insertRows is InsertRequest of rows rows with keys from first on and vectors drawn
// from rng.
func insertRows(rng *rand.Rand, first, rows int) *milvuspb.InsertRequest {
	ids := make([]int64, rows)
	for i := range ids {
		ids[i] = int64(first + i)
	}
	return &milvuspb.InsertRequest{
		DbName:         "default",
		CollectionName: "bench",
		NumRows:        uint32(rows),
		FieldsData: []*schemapb.FieldData{
			{
				Type: schemapb.DataType_Int64, FieldName: "id",
				Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
					Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}},
				}},
			},
			{
				Type: schemapb.DataType_FloatVector, FieldName: "vector",
				Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
					Dim:  Dim,
					Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: randomFloats(rng, rows*Dim)}},
				}},
			},
		},
	}
}

// SearchReply is the fake backend's answer to SearchRequest: status Success, one query,
// ids 0..TopK-1 with descending scores (what checkSearch wants).
func SearchReply() []byte {
	ids := make([]int64, TopK)
	scores := make([]float32, TopK)
	for i := range ids {
		ids[i] = int64(i)
		scores[i] = 1 - float32(i)/TopK
	}
	return encode(&milvuspb.SearchResults{
		Status:         &commonpb.Status{},
		CollectionName: "bench",
		Results: &schemapb.SearchResultData{
			NumQueries: 1,
			TopK:       TopK,
			Scores:     scores,
			Ids:        &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: ids}}},
			Topks:      []int64{TopK},
		},
	}).b
}

// RowsForBytes is the number of rows whose insert message is about n bytes.
func RowsForBytes(n int) int { return max(1, n/(4*Dim+2)) }

func encode(m proto.Message) *encoded {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &encoded{b: b}
}

// checkSearch verifies a Search reply the slow way: status OK, one query, ids 0..TopK-1
// with descending scores, as the fake backend answers.
func checkSearch(b []byte) error {
	ids, err := searchIDs(b)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if id != int64(i) {
			return fmt.Errorf("search reply: id %d at rank %d", id, i)
		}
	}
	return nil
}

// checkSearchShape verifies a real backend's Search reply: status OK, one query, TopK
// distinct ids with scores in rank order (COSINE: the highest first).
func checkSearchShape(b []byte) error {
	ids, err := searchIDs(b)
	if err != nil {
		return err
	}
	var r milvuspb.SearchResults
	_ = proto.Unmarshal(b, &r) // searchIDs decoded it
	seen := map[int64]bool{}
	scores := r.GetResults().GetScores()
	for i, id := range ids {
		if seen[id] || i > 0 && scores[i] > scores[i-1] {
			return fmt.Errorf("search reply: ids %v with scores %v", ids, scores)
		}
		seen[id] = true
	}
	return nil
}

// searchIDs decodes a Search reply and returns its ids once it has status OK, one query
// and TopK ids and scores.
func searchIDs(b []byte) ([]int64, error) {
	var r milvuspb.SearchResults
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("search reply: %w", err)
	}
	if c := r.GetStatus().GetCode(); c != 0 {
		return nil, fmt.Errorf("search reply: status %d %q", c, r.GetStatus().GetReason())
	}
	res := r.GetResults()
	ids := res.GetIds().GetIntId().GetData()
	if res.GetNumQueries() != 1 || res.GetTopK() != TopK || len(ids) != TopK || len(res.GetScores()) != TopK {
		return nil, fmt.Errorf("search reply: nq %d topk %d with %d ids, want 1, %d, %d", res.GetNumQueries(), res.GetTopK(), len(ids), TopK, TopK)
	}
	return ids, nil
}

// checkInsert verifies an Insert reply: status OK and every row counted.
func checkInsert(b []byte, rows int) error {
	var r milvuspb.MutationResult
	if err := proto.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("insert reply: %w", err)
	}
	if c := r.GetStatus().GetCode(); c != 0 {
		return fmt.Errorf("insert reply: status %d %q", c, r.GetStatus().GetReason())
	}
	if r.GetInsertCnt() != int64(rows) || len(r.GetIDs().GetIntId().GetData()) != rows {
		return fmt.Errorf("insert reply: %d rows inserted, want %d", r.GetInsertCnt(), rows)
	}
	return nil
}

// searchChecker checks the first reply fully and every later one against its bytes: the
// fake backend's Search reply is the same for the same request. With want set at the
// start (a real backend's reply, Env.SearchReply) every reply is compared with it.
type searchChecker struct{ want []byte }

func (c *searchChecker) check(b []byte) error {
	if c.want == nil {
		if err := checkSearch(b); err != nil {
			return err
		}
		c.want = bytes.Clone(b)
		return nil
	}
	if !bytes.Equal(b, c.want) {
		var got, want milvuspb.SearchResults
		_, _ = proto.Unmarshal(b, &got), proto.Unmarshal(c.want, &want)
		return fmt.Errorf("search reply differs from the first one: %v, not %v", textOf(&got), textOf(&want))
	}
	return nil
}

// prototext is m in one line, for an error message.
func textOf(m proto.Message) string {
	b, _ := prototextMarshal.Marshal(m)
	return string(b)
}

var prototextMarshal = prototext.MarshalOptions{Multiline: false}
