package milvus

import (
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Names are the database and collection a request names.
type Names struct {
	DB         string
	Collection string
}

// nameFields are the field numbers that carry the database and the collection in one
// request message; 0 means the message has no such field. They differ per message
// (milvus-io/milvus-proto proto/milvus.proto, v2.6.18: GetLoadStateRequest has
// collection_name=2 db_name=4, ImportRequest collection_name=1 db_name=7, ...), so they are read from the descriptors, never assumed.
type nameFields struct {
	db, collection protowire.Number
}

var requestFields = func() map[string]nameFields {
	sd := milvuspb.File_milvus_proto.Services().ByName("MilvusService")
	out := make(map[string]nameFields, sd.Methods().Len())
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		in := md.Input()
		out[string(md.Name())] = nameFields{
			db:         stringField(in, "db_name", "dbName"),
			collection: stringField(in, "collection_name", "collectionName"),
		}
	}
	return out
}()

func stringField(md protoreflect.MessageDescriptor, names ...string) protowire.Number {
	for _, n := range names {
		if fd := md.Fields().ByName(protoreflect.Name(n)); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			return fd.Number()
		}
	}
	return 0
}

// ReadNames reads the database and collection names from the start of a serialized
// request message of method m, without decoding the rest: Milvus request messages carry
// them in their first fields, so a prefix of the first message is usually enough (an
// insert of 64 MiB names its collection in its first bytes). complete is false when msg
// ended (it may be a prefix) before the fields were seen or passed, or msg is not a valid
// encoding; the names found so far are returned either way. (A whole message that ends
// before those field numbers is reported incomplete too: the caller knows it was whole.) Empty names mean the
// request leaves them to the defaults (the dbname metadata, then "default").
func ReadNames(m *Method, msg []byte) (n Names, complete bool) {
	if m == nil {
		return Names{}, true
	}
	f := requestFields[m.Name]
	wantDB, wantColl := f.db != 0, f.collection != 0
	if !wantDB && !wantColl {
		return Names{}, true
	}
	for len(msg) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(msg)
		if tagLen < 0 {
			return n, false
		}
		msg = msg[tagLen:]
		if typ == protowire.BytesType && (num == f.db || num == f.collection) {
			v, vLen := protowire.ConsumeBytes(msg)
			if vLen < 0 {
				return n, false
			}
			if num == f.db {
				n.DB, wantDB = string(v), false
			} else {
				n.Collection, wantColl = string(v), false
			}
			msg = msg[vLen:]
		} else {
			vLen := protowire.ConsumeFieldValue(num, typ, msg)
			if vLen < 0 {
				return n, false
			}
			msg = msg[vLen:]
		}
		// Encoders (Go, C++, Python) write fields in number order and omit empty strings:
		// past a field's number, it is absent. So the rest of a 64 MiB insert need not be
		// scanned. A hand-made message that repeats a name later would be read by Milvus
		// with last-one-wins; such a client only fools itself.
		if wantDB && num > f.db {
			wantDB = false
		}
		if wantColl && num > f.collection {
			wantColl = false
		}
		if !wantDB && !wantColl {
			return n, true
		}
	}
	return n, !wantDB && !wantColl
}
