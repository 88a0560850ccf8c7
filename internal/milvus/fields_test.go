package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
)

func TestReadNames(t *testing.T) {
	vec := make([]float32, 1000*768)
	cases := []struct {
		method string
		msg    proto.Message
		want   Names
	}{
		{"Search", &milvuspb.SearchRequest{Base: &commonpb.MsgBase{MsgID: 7}, DbName: "db1", CollectionName: "books", Nq: 1}, Names{"db1", "books"}},
		{"Insert", &milvuspb.InsertRequest{CollectionName: "books", NumRows: 1000, FieldsData: []*schemapb.FieldData{{
			FieldName: "v", Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 768, Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vec}}}}}}}, Names{"", "books"}},
		// Field numbers differ per message: collection_name=2, db_name=4.
		{"GetLoadState", &milvuspb.GetLoadStateRequest{CollectionName: "books", DbName: "db2"}, Names{"db2", "books"}},
		// Import: collection_name=1, db_name=7.
		{"Import", &milvuspb.ImportRequest{CollectionName: "books", DbName: "db3", Files: []string{"a.json"}}, Names{"db3", "books"}},
		// camelCase field names.
		{"GetQuerySegmentInfo", &milvuspb.GetQuerySegmentInfoRequest{DbName: "db4", CollectionName: "books"}, Names{"db4", "books"}},
		{"DropDatabase", &milvuspb.DropDatabaseRequest{DbName: "db5"}, Names{"db5", ""}},
		{"GetVersion", &milvuspb.GetVersionRequest{}, Names{}},
	}
	for _, c := range cases {
		b, err := proto.Marshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		m := Lookup(ServicePrefix + c.method)
		got, complete := ReadNames(m, b)
		if got != c.want || !complete {
			t.Errorf("%s: ReadNames = %+v, %v; want %+v, true", c.method, got, complete, c.want)
		}
		// The names are in the first bytes: a short prefix of a 3 MiB insert suffices.
		if len(b) > 4096 {
			if got, complete := ReadNames(m, b[:256]); got != c.want || !complete {
				t.Errorf("%s prefix: ReadNames = %+v, %v; want %+v, true", c.method, got, complete, c.want)
			}
		}
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
