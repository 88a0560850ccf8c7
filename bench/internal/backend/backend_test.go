package backend

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func searchRequest(collection string) *milvuspb.SearchRequest {
	return &milvuspb.SearchRequest{DbName: "default", CollectionName: collection, Nq: 1}
}

func insertRequest(rows int, fill float32) *milvuspb.InsertRequest {
	v := make([]float32, rows*8)
	for i := range v {
		v[i] = fill
	}
	return &milvuspb.InsertRequest{
		CollectionName: "bench", NumRows: uint32(rows),
		FieldsData: []*schemapb.FieldData{{
			Type: schemapb.DataType_FloatVector, FieldName: "vector",
			Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
				Dim: 8, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: v}},
			}},
		}},
	}
}

func start(t *testing.T) *grpc.ClientConn {
	t.Helper()
	reply := mustMarshal(&milvuspb.SearchResults{CollectionName: "bench"})
	s, err := Start("127.0.0.1:0", Messages{
		Search:      mustMarshal(searchRequest("bench")),
		SearchReply: reply,
		Insert:      func(rows int) []byte { return mustMarshal(insertRequest(rows, 0.5)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func call(t *testing.T, cc *grpc.ClientConn, method string, req, resp proto.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cc.Invoke(ctx, "/"+service+"/"+method, req, resp)
}

func TestSearch(t *testing.T) {
	cc := start(t)
	var res milvuspb.SearchResults
	if err := call(t, cc, "Search", searchRequest("bench"), &res); err != nil {
		t.Fatal(err)
	}
	if res.GetCollectionName() != "bench" {
		t.Errorf("reply names collection %q, want the canned reply's %q", res.GetCollectionName(), "bench")
	}
	err := call(t, cc, "Search", searchRequest("benci"), &res)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a Search with one byte changed: %v, want InvalidArgument", err)
	}
}

func TestInsert(t *testing.T) {
	cc := start(t)
	// 100,000 rows of 8 floats: 3 MiB, many buffers, num_rows after the vector data.
	for _, rows := range []int{1, 100, 100_000, 100} {
		var res milvuspb.MutationResult
		if err := call(t, cc, "Insert", insertRequest(rows, 0.5), &res); err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		if res.GetInsertCnt() != int64(rows) || len(res.GetIDs().GetIntId().GetData()) != rows {
			t.Errorf("%d rows: reply counts %d rows, %d ids", rows, res.GetInsertCnt(), len(res.GetIDs().GetIntId().GetData()))
		}
	}
	var res milvuspb.MutationResult
	err := call(t, cc, "Insert", insertRequest(100_000, 0.25), &res)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("an Insert with other vectors: %v, want InvalidArgument", err)
	}
	err = call(t, cc, "Insert", &milvuspb.InsertRequest{CollectionName: "bench"}, &res)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("an Insert without num_rows: %v, want InvalidArgument", err)
	}
}

func TestOtherCalls(t *testing.T) {
	cc := start(t)
	var health milvuspb.CheckHealthResponse
	if err := call(t, cc, "CheckHealth", &milvuspb.CheckHealthRequest{}, &health); err != nil || !health.GetIsHealthy() {
		t.Errorf("CheckHealth: healthy %v, error %v; want healthy", health.GetIsHealthy(), err)
	}
	var version milvuspb.GetVersionResponse
	if err := call(t, cc, "GetVersion", &milvuspb.GetVersionRequest{}, &version); err != nil || version.GetVersion() == "" {
		t.Errorf("GetVersion: %q, %v", version.GetVersion(), err)
	}
	var show milvuspb.ShowCollectionsResponse
	if err := call(t, cc, "ShowCollections", &milvuspb.ShowCollectionsRequest{}, &show); err != nil || show.GetStatus().GetCode() != 0 {
		t.Errorf("ShowCollections: status %v, %v; want an empty Success", show.GetStatus(), err)
	}
}
