package milvus

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CacheRequest is what the reply cache reads of a whole request message besides its key.
type CacheRequest struct {
	Names
	// Consistency is the level asked for, by name ("Strong", "Session", "Bounded",
	// "Eventually", "Customized"); "" when the request leaves it to the collection's
	// default (use_default_consistency) or its method has no level.
	Consistency string
	// HasLevel: the method has a consistency level (Search, Query, HybridSearch).
	HasLevel bool
	// Guarantee is guarantee_timestamp: for Session, the last write the client saw (a
	// Milvus hybrid timestamp: milliseconds << 18).
	Guarantee uint64
	// Iterator: a call of a search or query iterator (an "iterator" parameter, which
	// pymilvus sets), whose pages the cache does not serve.
	Iterator bool
}

// cacheLayout is where a request carries what the cache leaves out of its key, from the
// descriptors.
type cacheLayout struct {
	base      protowire.Number // base: the MsgBase header (message ids, timestamps)
	guarantee protowire.Number // guarantee_timestamp
	params    protowire.Number // search_params or query_params: repeated KeyValuePair
}

// iteratorKey is the parameter pymilvus sets on the calls of its iterators
// (client/constants.py ITERATOR_FIELD).
const iteratorKey = "iterator"

func newCacheLayout(in protoreflect.MessageDescriptor) cacheLayout {
	var l cacheLayout
	if fd := in.Fields().ByName("base"); fd != nil && fd.Message() != nil && fd.Message().FullName() == "milvus.proto.common.MsgBase" && !fd.IsList() {
		l.base = fd.Number()
	}
	l.guarantee = fieldOf(in, "guarantee_timestamp", protoreflect.Uint64Kind)
	l.params = paramsField(in, "search_params")
	if l.params == 0 {
		l.params = paramsField(in, "query_params")
	}
	return l
}

// CacheKey appends to dst the parts of msg, a whole request message of method m, that
// decide its answer: every field as it came but the base header and guarantee_timestamp,
// which differ from call to call without changing what Milvus answers. It also returns
// the request's names, consistency level and guarantee timestamp. ok is false when msg is
// not a valid encoding.
func CacheKey(dst []byte, m *Method, msg []byte) (key []byte, r CacheRequest, ok bool) {
	lay, cl := m.request, m.cache
	r.HasLevel = lay.level != 0
	level, useDefault := int32(0), false
	for len(msg) > 0 {
		f, n := nextField(msg)
		if n < 0 {
			return dst, r, false
		}
		msg = msg[n:]
		switch {
		case f.num == cl.base && f.typ == protowire.BytesType:
			continue
		case f.num == cl.guarantee && f.typ == protowire.VarintType:
			r.Guarantee = f.v
			continue
		case f.num == lay.db && f.typ == protowire.BytesType:
			r.DB = string(f.b)
		case f.num == lay.collection && f.typ == protowire.BytesType:
			r.Collection = string(f.b)
		case f.num == lay.level && f.typ == protowire.VarintType:
			level = int32(f.v)
		case f.num == lay.useDefault && f.typ == protowire.VarintType:
			useDefault = f.v != 0
		case f.num == cl.params && f.typ == protowire.BytesType:
			r.Iterator = r.Iterator || string(firstBytes(f.b)) == iteratorKey
		}
		dst = append(dst, f.raw...)
	}
	if r.HasLevel && !useDefault {
		r.Consistency = consistencyName(level)
	}
	return dst, r, true
}

// firstBytes is field 1 of message b when it is length-delimited: the key of a
// KeyValuePair, the name of a CollectionSchema.
func firstBytes(b []byte) []byte {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			break
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			return f.b
		}
		b = b[n:]
	}
	return nil
}

// wireField is one field of a message, as eachField gives it.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the field as encoded: its tag and its value
	v   uint64 // a varint's value
	b   []byte // a length-delimited value's bytes
}

// nextField reads the first field of msg; n is its length, or negative when msg does
// not start with a valid field.
func nextField(msg []byte) (w wireField, n int) {
	num, typ, tn := protowire.ConsumeTag(msg)
	if tn < 0 {
		return w, tn
	}
	vn := protowire.ConsumeFieldValue(num, typ, msg[tn:])
	if vn < 0 {
		return w, vn
	}
	w = wireField{num: num, typ: typ, raw: msg[:tn+vn]}
	switch typ {
	case protowire.VarintType:
		w.v, _ = protowire.ConsumeVarint(msg[tn:])
	case protowire.BytesType:
		w.b, _ = protowire.ConsumeBytes(msg[tn:])
	}
	return w, tn + vn
}

// CacheReply is what the reply cache reads of a whole reply message.
type CacheReply struct {
	// SessionTS is the Milvus timestamp a Search or Query ran at (session_ts); 0 when the
	// reply has none.
	SessionTS uint64
	// Consistency is DescribeCollection's consistency_level: the collection's default.
	Consistency string
	// Collection and DB are the names a DescribeCollection reply gives.
	Names
	// Resolved is the name of the collection a DescribeCollection reply describes (its
	// schema's name): the name asked for when that is a collection, the collection an
	// alias names when it is an alias. Milvus's proxy answers with the name asked for as
	// collection_name (internal/proxy/task.go, describeCollectionTask), so only the
	// schema tells. "" when the reply has no schema.
	Resolved string
}

// replyCacheLayout is where a reply carries what the cache reads, from the descriptors.
type replyCacheLayout struct {
	sessionTS, level, db, collection, schema protowire.Number
}

func newReplyCacheLayout(out protoreflect.MessageDescriptor) replyCacheLayout {
	return replyCacheLayout{
		sessionTS:  fieldOf(out, "session_ts", protoreflect.Uint64Kind),
		level:      fieldOf(out, "consistency_level", protoreflect.EnumKind),
		db:         fieldOf(out, "db_name", protoreflect.StringKind),
		collection: fieldOf(out, "collection_name", protoreflect.StringKind),
		schema:     schemaField(out),
	}
}

// schemaField is the number of out's schema field when it is a CollectionSchema, whose
// field 1 is the collection's name.
func schemaField(out protoreflect.MessageDescriptor) protowire.Number {
	fd := out.Fields().ByName("schema")
	if fd == nil || fd.IsList() || inOneof(fd) || fd.Message() == nil || fd.Message().FullName() != "milvus.proto.schema.CollectionSchema" {
		return 0
	}
	if name := fd.Message().Fields().ByNumber(1); name == nil || name.Name() != "name" || name.Kind() != protoreflect.StringKind {
		return 0
	}
	return fd.Number()
}

// ReadCacheReply reads msg, a whole reply message of method m.
func ReadCacheReply(m *Method, msg []byte) (r CacheReply) {
	lay := m.replyCache
	level := int32(0)
	for len(msg) > 0 {
		f, n := nextField(msg)
		if n < 0 {
			break
		}
		msg = msg[n:]
		switch {
		case f.typ == protowire.VarintType && f.num == lay.sessionTS:
			r.SessionTS = f.v
		case f.typ == protowire.VarintType && f.num == lay.level:
			level = int32(f.v)
		case f.typ == protowire.BytesType && f.num == lay.db:
			r.DB = string(f.b)
		case f.typ == protowire.BytesType && f.num == lay.collection:
			r.Collection = string(f.b)
		case f.typ == protowire.BytesType && f.num == lay.schema:
			r.Resolved = string(firstBytes(f.b))
		}
	}
	if lay.level != 0 {
		// Absent is the enum's zero: Strong.
		r.Consistency = consistencyName(level)
	}
	return r
}
