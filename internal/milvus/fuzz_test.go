package milvus

import (
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// methodNames are the MilvusService methods in descriptor order, so that a fuzzer's byte
// picks a method stably.
var methodNames = func() []string {
	sd := milvuspb.File_milvus_proto.Services().ByName("MilvusService")
	out := make([]string, sd.Methods().Len())
	for i := range out {
		out[i] = string(sd.Methods().Get(i).Name())
	}
	return out
}()

func inputOf(name string) protoreflect.MessageDescriptor {
	return milvuspb.File_milvus_proto.Services().ByName("MilvusService").Methods().ByName(protoreflect.Name(name)).Input()
}

// FuzzReadNames feeds ReadNames any bytes as the first message of any method. It must
// not panic, and on every message a real encoder produces (the fuzzed bytes decoded and
// encoded again, which puts fields in number order and drops duplicates) it must find
// exactly the db and collection names Milvus will read, from the whole message and from
// any prefix it calls complete. (Hand-made messages that repeat a name field are read by
// Milvus last-one-wins and by ReadNames first-one-wins; see fields.go.)
func FuzzReadNames(f *testing.F) {
	seed := func(method string, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for i, n := range methodNames {
			if n == method {
				f.Add(uint16(i), b, uint16(len(b)))
			}
		}
	}
	seed("Search", &milvuspb.SearchRequest{Base: &commonpb.MsgBase{MsgID: 7}, DbName: "db1", CollectionName: "books", Nq: 1})
	seed("Insert", &milvuspb.InsertRequest{DbName: "db", CollectionName: "books", PartitionName: "p", NumRows: 3})
	seed("GetLoadState", &milvuspb.GetLoadStateRequest{CollectionName: "books", DbName: "db2"})
	seed("Import", &milvuspb.ImportRequest{CollectionName: "books", DbName: "db3", Files: []string{"a.json"}})
	seed("DropDatabase", &milvuspb.DropDatabaseRequest{DbName: "db5"})
	seed("GetVersion", &milvuspb.GetVersionRequest{})
	f.Add(uint16(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(3))
	f.Fuzz(func(t *testing.T, which uint16, msg []byte, cut uint16) {
		name := methodNames[int(which)%len(methodNames)]
		m := Lookup(ServicePrefix + name)
		if m == nil {
			t.Fatalf("method %s is not in the table", name)
		}
		// Any bytes: no panic, whatever it says.
		ReadNames(m, msg)
		ReadNames(m, msg[:min(int(cut), len(msg))])

		in := dynamicpb.NewMessage(inputOf(name))
		if proto.Unmarshal(msg, in) != nil {
			return
		}
		canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(in)
		if err != nil {
			return
		}
		want := Names{DB: stringValue(in, "db_name", "dbName"), Collection: stringValue(in, "collection_name", "collectionName")}
		// On a whole message, complete may be false (the names' fields were absent and
		// the message ended first); the caller knows it was whole, so the names found
		// are the answer.
		if got, _ := ReadNames(m, canon); got != want {
			t.Fatalf("%s: ReadNames = %+v; the message holds %+v", name, got, want)
		}
		prefix := canon[:min(int(cut), len(canon))]
		if got, complete := ReadNames(m, prefix); complete && got != want {
			t.Fatalf("%s: on a %d-byte prefix ReadNames = %+v and says complete; the message holds %+v", name, len(prefix), got, want)
		}
	})
}

func stringValue(m protoreflect.Message, names ...string) string {
	for _, n := range names {
		if fd := m.Descriptor().Fields().ByName(protoreflect.Name(n)); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			return m.Get(fd).String()
		}
	}
	return ""
}
