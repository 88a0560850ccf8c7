package milvus

import (
	"strconv"
	"testing"
	"unicode/utf8"

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

func methodDesc(name string) protoreflect.MethodDescriptor {
	return milvuspb.File_milvus_proto.Services().ByName("MilvusService").Methods().ByName(protoreflect.Name(name))
}

// seeder adds a message of a method to f's corpus.
func seeder(f *testing.F) func(method string, m proto.Message) {
	return func(method string, m proto.Message) {
		b := must(proto.Marshal(m))
		for i, n := range methodNames {
			if n == method {
				f.Add(uint16(i), b, uint16(len(b)))
			}
		}
	}
}

// canonical decodes msg as a message of md and encodes it again as a real encoder does
// (fields in number order, no duplicates); ok is false when msg is not one.
func canonical(md protoreflect.MessageDescriptor, msg []byte) (protoreflect.Message, []byte, bool) {
	m := dynamicpb.NewMessage(md)
	if proto.Unmarshal(msg, m) != nil {
		return nil, nil, false
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return m, b, err == nil
}

// inPieces feeds the framed message to w in pieces of size bytes.
func inPieces(msg []byte, size int, write func([]byte) bool) {
	stream := append(frameOf(msg), msg...)
	for len(stream) > 0 {
		k := min(size, len(stream))
		if write(stream[:k]) {
			return
		}
		stream = stream[k:]
	}
}

// FuzzReadRequest feeds the request reader any bytes as the first message of any method.
// It must not panic, and on every message a real encoder produces (the fuzzed bytes
// decoded and encoded again) it must find exactly what Milvus will read: from the whole
// message, from any prefix for the fields it calls known, and from the message cut in
// pieces of any size. (Hand-made messages that repeat a field are read by Milvus
// last-one-wins and here first-one-wins; see fields.go.)
func FuzzReadRequest(f *testing.F) {
	seed := seeder(f)
	for _, c := range requestCases {
		if c.method != "Insert" { // 3 MiB: too big a seed
			seed(c.method, c.msg)
		}
	}
	seed("Insert", insert(3, 2))
	seed("Search", &milvuspb.SearchRequest{CollectionName: "c", SearchParams: []*commonpb.KeyValuePair{{Key: "topk"}, kv("topk", "5")}})
	f.Add(uint16(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(3))
	f.Fuzz(func(t *testing.T, which uint16, msg []byte, cut uint16) {
		name := methodNames[int(which)%len(methodNames)]
		m := Lookup(ServicePrefix + name)
		if m == nil {
			t.Fatalf("method %s is not in the table", name)
		}
		// Any bytes: no panic, whatever it says.
		ReadRequest(m, msg, true, AllFields)
		ReadRequest(m, msg[:min(int(cut), len(msg))], false, AllFields)
		var s RequestScanner
		s.Reset(m, AllFields)
		inPieces(msg, 1+int(cut)%61, s.Write)

		in, canon, ok := canonical(methodDesc(name).Input(), msg)
		if !ok {
			return
		}
		want, lost := milvusReads(in)
		got, known := ReadRequest(m, canon, true, AllFields)
		if known|lost != AllFields || !sameKnown(got, want, known) {
			t.Fatalf("%s: ReadRequest = %+v (known %b); the message holds %+v (unreadable %b)", name, got, known, want, lost)
		}
		prefix := canon[:min(int(cut), len(canon))]
		if got, known := ReadRequest(m, prefix, false, AllFields); !sameKnown(got, want, known) {
			t.Fatalf("%s: on a %d-byte prefix ReadRequest = %+v, known %b; the message holds %+v", name, len(prefix), got, known, want)
		}
		// In pieces, and in number order (oneof members too) as pymilvus encodes.
		s.Reset(m, AllFields)
		inPieces(numberOrder(canon), 1+int(cut)%61, s.Write)
		if got, known := s.Result(); known|lost != AllFields || !sameKnown(got, want, known) {
			t.Fatalf("%s: in pieces of %d bytes RequestScanner = %+v, known %b; the message holds %+v", name, 1+int(cut)%61, got, known, want)
		}
	})
}

// milvusReads is what Milvus reads from a decoded request, and which fields the reader
// cannot read (a name over 256 bytes, a topk value over 32).
func milvusReads(in protoreflect.Message) (r Request, lost Fields) {
	r.DB = stringValue(in, "db_name", "dbName")
	r.Collection = stringValue(in, "collection_name", "collectionName")
	if len(r.DB) > valueCap {
		r.DB, lost = "", lost|FieldDB
	}
	if len(r.Collection) > valueCap {
		r.Collection, lost = "", lost|FieldCollection
	}
	fields := in.Descriptor().Fields()
	if fd := fields.ByName("consistency_level"); fd != nil && fd.Kind() == protoreflect.EnumKind {
		r.Consistency = consistencyName(int32(in.Get(fd).Enum()))
		if ud := fields.ByName("use_default_consistency"); ud != nil && in.Get(ud).Bool() {
			r.Consistency = ""
		}
	}
	if fd := fields.ByName("num_rows"); fd != nil {
		r.Rows = int64(in.Get(fd).Uint())
	}
	if fd := fields.ByName("nq"); fd != nil {
		r.NQ = in.Get(fd).Int()
	}
	if fd := fields.ByName("search_params"); fd != nil {
		// Milvus takes the first pair named topk (funcutil.GetAttrByKeyFromRepeatedKV).
		list := in.Get(fd).List()
		for i := range list.Len() {
			p := list.Get(i).Message()
			if p.Get(p.Descriptor().Fields().ByName("key")).String() != "topk" {
				continue
			}
			v := p.Get(p.Descriptor().Fields().ByName("value")).String()
			if len(v) > 32 {
				lost |= FieldTopK
			}
			r.TopK, _ = strconvParseInt(v)
			break
		}
	}
	return r, lost
}

func strconvParseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// sameKnown compares the fields of got that known says are known.
func sameKnown(got, want Request, known Fields) bool {
	return (known&FieldDB == 0 || got.DB == want.DB) &&
		(known&FieldCollection == 0 || got.Collection == want.Collection) &&
		(known&FieldConsistency == 0 || got.Consistency == want.Consistency) &&
		(known&FieldRows == 0 || got.Rows == want.Rows) &&
		(known&FieldNQ == 0 || got.NQ == want.NQ) &&
		(known&FieldTopK == 0 || got.TopK == want.TopK)
}

func stringValue(m protoreflect.Message, names ...string) string {
	for _, n := range names {
		if fd := m.Descriptor().Fields().ByName(protoreflect.Name(n)); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
			return m.Get(fd).String()
		}
	}
	return ""
}

// FuzzReadStatus feeds the status reader any bytes as the first reply of any method, with
// the same promises as FuzzReadRequest.
func FuzzReadStatus(f *testing.F) {
	seed := seeder(f)
	for _, c := range statusCases {
		seed(c.method, c.msg)
	}
	f.Fuzz(func(t *testing.T, which uint16, msg []byte, cut uint16) {
		name := methodNames[int(which)%len(methodNames)]
		m := Lookup(ServicePrefix + name)
		ReadStatus(m, msg, true)
		ReadStatus(m, msg[:min(int(cut), len(msg))], false)
		var s StatusScanner
		s.Reset(m)
		inPieces(msg, 1+int(cut)%61, s.Write)

		out, canon, ok := canonical(methodDesc(name).Output(), msg)
		if !ok {
			return
		}
		want := statusOf(out)
		if got, known := ReadStatus(m, canon, true); got != want || !known {
			t.Fatalf("%s: ReadStatus = %+v, %v; the reply holds %+v", name, got, known, want)
		}
		if got, known := ReadStatus(m, canon[:min(int(cut), len(canon))], false); known && got != want {
			t.Fatalf("%s: on a %d-byte prefix ReadStatus = %+v and says known; the reply holds %+v", name, min(int(cut), len(canon)), got, want)
		}
		s.Reset(m)
		inPieces(canon, 1+int(cut)%61, s.Write)
		if got, known := s.Result(); got != want || !known {
			t.Fatalf("%s: in pieces StatusScanner = %+v, %v; the reply holds %+v", name, got, known, want)
		}
	})
}

// statusOf is the Status a decoded reply carries, as the reader reports it.
func statusOf(out protoreflect.Message) Status {
	st := out
	if out.Descriptor().FullName() != statusName {
		fd := out.Descriptor().Fields().ByName("status")
		if fd == nil || fd.Message() == nil || fd.Message().FullName() != statusName || !out.Has(fd) {
			return Status{}
		}
		st = out.Get(fd).Message()
	}
	get := func(n string) protoreflect.Value {
		return st.Get(st.Descriptor().Fields().ByName(protoreflect.Name(n)))
	}
	reason := get("reason").String()
	if len(reason) > MaxReason {
		reason = string(cutRunes([]byte(reason[:MaxReason]), false))
	}
	return Status{Code: int32(get("code").Int()), ErrorCode: int32(get("error_code").Enum()), Reason: SafeReason(reason), Retriable: get("retriable").Bool()}
}

// FuzzUserName: the user name comes out whole and nothing of the password does.
func FuzzUserName(f *testing.F) {
	f.Add("root", "Milvus", byte(0))
	f.Add("alice", "p:a:ss", byte(1))
	f.Add("", "x", byte(2))
	f.Fuzz(func(t *testing.T, user, password string, form byte) {
		cred := user + ":" + password
		var v string
		switch form % 3 {
		case 0:
			v = b64(cred)
		case 1:
			v = "Basic " + b64(cred)
		default:
			v = "Bearer " + cred
		}
		got := UserName(v)
		want := user
		if containsColon(user) || len(user) > maxUser || !utf8.ValidString(user) {
			want = got // only the password rule holds
		}
		if got != want {
			t.Fatalf("UserName(%q) = %q, want %q", v, got, want)
		}
		if len(got) > len(user) {
			t.Fatalf("UserName(%q) = %q: longer than the user name %q", v, got, user)
		}
		UserName(user) // any string: no panic
	})
}
