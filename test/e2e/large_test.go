package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestLargeMessagesToRealMilvus sends a ~62 MiB Insert through milvus-lb to milvus-lite and
// reads the same vectors back in one ~62 MiB Query response. Milvus accepts requests up to
// 64 MiB and pymilvus sets no limit, so a balancer with gRPC's 4 MiB default would break
// bulk loads that work without it.
func TestLargeMessagesToRealMilvus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 62 MiB insert and query")
	}
	const (
		dim  = 1024
		rows = 16000 // 16000 × 1024 × 4 B = 62.5 MiB of vectors, under Milvus' 64 MiB
	)
	g := runGuide(t, testenv.FreePort(t))
	client := dial(t, fmt.Sprintf("%s:%d", g.address, g.port), g.tlsConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const name = "large_messages"
	schema, err := proto.Marshal(&schemapb.CollectionSchema{
		Name: name,
		Fields: []*schemapb.FieldSchema{
			{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
			{FieldID: 101, Name: "vector", DataType: schemapb.DataType_FloatVector,
				TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(dim)}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "CreateCollection", nil, call(client.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: schema, ShardsNum: 1})))

	ids := make([]int64, rows)
	vectors := make([]float32, rows*dim)
	for i := range ids {
		ids[i] = int64(i)
		for j := range dim {
			vectors[i*dim+j] = float32(i) + float32(j)/dim // row i is recognisable
		}
	}
	insert := &milvuspb.InsertRequest{
		CollectionName: name,
		NumRows:        rows,
		FieldsData: []*schemapb.FieldData{
			{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{
				Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
			{FieldName: "vector", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{
				Vectors: &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vectors}}}}},
		},
	}
	size := proto.Size(insert)
	t.Logf("Insert request: %.1f MiB", float64(size)/(1<<20))
	start := time.Now()
	res, err := client.Insert(ctx, insert)
	mustOK(t, "Insert", err, res.GetStatus())
	if got := res.GetInsertCnt(); got != rows {
		t.Fatalf("Insert: insert_cnt %d, want %d", got, rows)
	}
	t.Logf("Insert through milvus-lb: %v", time.Since(start).Round(time.Millisecond))

	// Query needs a loaded collection, and a loaded collection needs an index (FLAT: the
	// cheapest to build; the index is not what this test is about).
	start = time.Now()
	mustOK(t, "CreateIndex", nil, call(client.CreateIndex(ctx, &milvuspb.CreateIndexRequest{
		CollectionName: name, FieldName: "vector",
		ExtraParams: []*commonpb.KeyValuePair{{Key: "index_type", Value: "FLAT"}, {Key: "metric_type", Value: "L2"}},
	})))
	mustOK(t, "LoadCollection", nil, call(client.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{CollectionName: name})))
	t.Logf("index and load: %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	q, err := client.Query(ctx, &milvuspb.QueryRequest{
		CollectionName:        name,
		Expr:                  "id >= 0",
		OutputFields:          []string{"id", "vector"},
		QueryParams:           []*commonpb.KeyValuePair{{Key: "limit", Value: fmt.Sprint(rows)}},
		ConsistencyLevel:      commonpb.ConsistencyLevel_Strong,
		UseDefaultConsistency: false,
	}, grpc.MaxCallRecvMsgSize(256<<20))
	mustOK(t, "Query", err, q.GetStatus())
	t.Logf("Query response through milvus-lb: %.1f MiB in %v", float64(proto.Size(q))/(1<<20), time.Since(start).Round(time.Millisecond))

	var gotIDs []int64
	var gotVectors []float32
	for _, f := range q.GetFieldsData() {
		switch f.GetFieldName() {
		case "id":
			gotIDs = f.GetScalars().GetLongData().GetData()
		case "vector":
			gotVectors = f.GetVectors().GetFloatVector().GetData()
		}
	}
	if len(gotIDs) != rows || len(gotVectors) != rows*dim {
		t.Fatalf("Query returned %d ids and %d floats, want %d and %d", len(gotIDs), len(gotVectors), rows, rows*dim)
	}
	for k, id := range gotIDs {
		if want := float32(id) + 0.5; gotVectors[k*dim+dim/2] != want {
			t.Fatalf("row id %d came back with vector[%d] = %v, want %v", id, dim/2, gotVectors[k*dim+dim/2], want)
		}
	}
	// No DropCollection: milvus-lite takes seconds to delete 62 MiB, and its data directory
	// goes with the test.
}

// call adapts a (Status, error) RPC result for mustOK.
func call(st *commonpb.Status, err error) *callResult { return &callResult{st, err} }

type callResult struct {
	st  *commonpb.Status
	err error
}

// mustOK fails the test on a gRPC error or a Milvus error status (Milvus reports most
// errors inside an OK reply).
func mustOK(t *testing.T, what string, err error, st any) {
	t.Helper()
	var status *commonpb.Status
	switch v := st.(type) {
	case *callResult:
		err, status = v.err, v.st
	case *commonpb.Status:
		status = v
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if status.GetCode() != 0 || (status.GetErrorCode() != commonpb.ErrorCode_Success) {
		t.Fatalf("%s: Milvus error %d/%v: %s", what, status.GetCode(), status.GetErrorCode(), status.GetReason())
	}
}
