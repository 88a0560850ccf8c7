package milvus

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Names are the database and collection a request names.
type Names struct {
	DB         string
	Collection string
}

// Request is what a request message says about its call, for the call's record, routing
// and limits: names and counts only.
type Request struct {
	Names
	// Consistency is the level a Search, Query or HybridSearch asks for ("Strong",
	// "Session", "Bounded", "Eventually", "Customized"); "" when the request leaves it to
	// the collection's default (use_default_consistency, which pymilvus sets when no level
	// is given) or its method has none.
	Consistency string
	// Guarantee is the guarantee_timestamp of a Search, Query or HybridSearch (a Milvus
	// hybrid timestamp: physical milliseconds << 18, or one of the values 0, 1 and 2 that
	// name no time); it is known with the consistency level, and 0 when absent.
	Guarantee uint64
	Rows      int64 // num_rows of Insert and Upsert
	NQ        int64 // Search: the number of query vectors (nq)
	TopK      int64 // Search: the "topk" search parameter (0 when it is not a number)
}

// Fields is a set of the fields of Request.
type Fields uint8

const (
	FieldDB Fields = 1 << iota
	FieldCollection
	FieldConsistency
	FieldRows
	FieldNQ
	FieldTopK

	FieldNames = FieldDB | FieldCollection
	AllFields  = FieldNames | FieldConsistency | FieldRows | FieldNQ | FieldTopK
)

// topKKey is the search parameter that carries a Search's limit: pymilvus and the Go SDK
// both send it, and Milvus's proxy reads it (common.TopKKey).
const topKKey = "topk"

// requestLayout is where one request message carries each field, read from the
// descriptors: field numbers differ per message (milvus-io/milvus-proto proto/milvus.proto,
// v2.6.18: GetLoadState has collection_name=2 db_name=4, Import collection_name=1 db_name=7, ...),
// so they are never assumed. 0 means the message has no such field.
type requestLayout struct {
	db, collection    protowire.Number
	level, useDefault protowire.Number // consistency_level, use_default_consistency
	guarantee         protowire.Number // guarantee_timestamp, of a message with a level
	rows, nq          protowire.Number // num_rows, nq
	rowsKind, nqKind  protoreflect.Kind
	params            protowire.Number // search_params: repeated KeyValuePair
	has               Fields
	// settled lists the fields in number order with the number past which each is known:
	// encoders (Go, C++, Python) write fields in number order and omit empty values, so
	// a field not seen by then is absent. (Go writes oneof members last, out of order:
	// pymilvus sends a Search's vectors before nq, the Go SDK after everything.)
	settled []settling
}

type settling struct {
	num protowire.Number
	f   Fields
}

func newRequestLayout(in protoreflect.MessageDescriptor) *requestLayout {
	l := &requestLayout{
		db:         stringField(in, "db_name", "dbName"),
		collection: stringField(in, "collection_name", "collectionName"),
		level:      fieldOf(in, "consistency_level", protoreflect.EnumKind),
		useDefault: fieldOf(in, "use_default_consistency", protoreflect.BoolKind),
		params:     paramsField(in, "search_params"),
	}
	if l.level != 0 {
		l.guarantee = fieldOf(in, "guarantee_timestamp", protoreflect.Uint64Kind)
	}
	l.rows, l.rowsKind = intField(in, "num_rows")
	l.nq, l.nqKind = intField(in, "nq")
	add := func(num protowire.Number, f Fields) {
		if num == 0 {
			return
		}
		l.has |= f
		i := len(l.settled)
		for i > 0 && l.settled[i-1].num > num {
			i--
		}
		l.settled = append(l.settled[:i], append([]settling{{num, f}}, l.settled[i:]...)...)
	}
	add(l.db, FieldDB)
	add(l.collection, FieldCollection)
	add(max(l.level, l.useDefault, l.guarantee), FieldConsistency)
	add(l.rows, FieldRows)
	add(l.nq, FieldNQ)
	add(l.params, FieldTopK)
	return l
}

func stringField(md protoreflect.MessageDescriptor, names ...string) protowire.Number {
	for _, n := range names {
		if num := fieldOf(md, n, protoreflect.StringKind); num != 0 {
			return num
		}
	}
	return 0
}

func fieldOf(md protoreflect.MessageDescriptor, name string, kind protoreflect.Kind) protowire.Number {
	if fd := md.Fields().ByName(protoreflect.Name(name)); fd != nil && fd.Kind() == kind && !fd.IsList() && !inOneof(fd) {
		return fd.Number()
	}
	return 0
}

// inOneof reports a member of a oneof, which Go's encoder writes after the other fields,
// out of number order (no field read here is one; a future milvus-proto might make one).
func inOneof(fd protoreflect.FieldDescriptor) bool {
	o := fd.ContainingOneof()
	return o != nil && !o.IsSynthetic()
}

func intField(md protoreflect.MessageDescriptor, name string) (protowire.Number, protoreflect.Kind) {
	for _, k := range []protoreflect.Kind{protoreflect.Int64Kind, protoreflect.Uint32Kind, protoreflect.Int32Kind, protoreflect.Uint64Kind} {
		if num := fieldOf(md, name, k); num != 0 {
			return num, k
		}
	}
	return 0, 0
}

func paramsField(md protoreflect.MessageDescriptor, name string) protowire.Number {
	fd := md.Fields().ByName(protoreflect.Name(name))
	if fd == nil || !fd.IsList() || inOneof(fd) || fd.Message() == nil || fd.Message().FullName() != "milvus.proto.common.KeyValuePair" {
		return 0
	}
	return fd.Number()
}

// intValue is a varint as protobuf reads a field of kind k.
func intValue(k protoreflect.Kind, v uint64) int64 {
	switch k {
	case protoreflect.Int32Kind:
		return int64(int32(v))
	case protoreflect.Uint32Kind:
		return int64(uint32(v))
	}
	return int64(v)
}

// consistencyNames are commonpb.ConsistencyLevel's names by number.
var consistencyNames = func() []string {
	vals := consistencyEnum.Values()
	out := make([]string, 0, vals.Len())
	for i := range vals.Len() {
		v := vals.Get(i)
		for int(v.Number()) >= len(out) {
			out = append(out, "")
		}
		out[v.Number()] = string(v.Name())
	}
	return out
}()

func consistencyName(level int32) string {
	if level >= 0 && int(level) < len(consistencyNames) && consistencyNames[level] != "" {
		return consistencyNames[level]
	}
	return "Unknown"
}

// RequestScanner reads a call's Request from the DATA bytes of its request stream as they
// pass (the gRPC framing included), one pass, holding at most a field header and a name:
// nothing of the message is kept or decoded beyond the wanted fields. Names come first in
// every message, so the first bytes tell them. In pymilvus's encoding nq, topk and the
// consistency level of a Search come after its vectors (the Go SDK sends the vectors
// last), and num_rows comes after an Insert's data: they are known once those bytes have
// passed. The zero value is not ready: call Reset. Not safe for concurrent use; it
// allocates nothing but the names it returns.
type RequestScanner struct {
	requestState
	scan
	// seen are the database and collection names of the scanner's last calls, kept
	// across Reset: a scanner used again (a relayed connection's) reads the same names
	// call after call, and taking the string it has costs no allocation.
	seen [2]string
}

// requestState is a RequestScanner's own state, reset as a whole (the scan's buffer is
// not: scan.reset).
type requestState struct {
	lay               *requestLayout
	want, known, lost Fields
	r                 Request
	level             int32
	useDefault        bool // use_default_consistency: the level is the collection's
	next              int  // index in lay.settled of the first field not yet passed
}

var noRequestFields = &requestLayout{}

// Reset starts reading the first request message of a call of method m (nil for anything
// that is not a MilvusService method), looking for the fields in want.
func (s *RequestScanner) Reset(m *Method, want Fields) {
	s.requestState = requestState{}
	s.scan.reset()
	s.start(m, want)
}

func (s *RequestScanner) start(m *Method, want Fields) {
	s.lay, s.want = noRequestFields, want&AllFields
	if m != nil && m.request != nil {
		s.lay = m.request
	}
	// A field the message does not have is known at once: it is empty.
	s.known = s.want &^ s.lay.has
	s.done = s.known == s.want
}

// Widen adds the fields in f to those wanted. Fields whose place in the message was
// already passed stay unknown: call it before the first Write.
func (s *RequestScanner) Widen(f Fields) {
	f &= AllFields &^ s.want
	s.want |= f
	s.known |= f &^ s.lay.has
	s.done = s.known|s.lost == s.want
}

// Write reads the next bytes of the request stream. It returns true once there is nothing
// more to learn: every wanted field is known, the first message ended, or it cannot be
// read (compressed, or not a valid encoding).
func (s *RequestScanner) Write(p []byte) (done bool) {
	if msg, ok := s.input(p); ok {
		s.feed(msg)
	}
	return s.done
}

// Result returns the fields read so far and which of the wanted ones are known: read, or
// certainly absent (empty or zero). A wanted field not in known may still come, or could
// not be read (cut short by the end of what was given, or a name over 256 bytes).
func (s *RequestScanner) Result() (Request, Fields) { return s.r, s.known }

// Size is the length of the first message (its gRPC length prefix), once the prefix was
// read.
func (s *RequestScanner) Size() (int64, bool) { return s.fr.size() }

// ReadRequest reads the wanted fields from msg, a request message of method m or its first
// bytes (whole is false): RequestScanner without the gRPC framing.
func ReadRequest(m *Method, msg []byte, whole bool, want Fields) (Request, Fields) {
	var s RequestScanner
	s.start(m, want)
	if s.unframed(msg, whole) {
		s.feed(msg)
	}
	return s.Result()
}

// ReadNames reads the database and collection names from the start of a request message
// of method m. complete is false when msg ended (it may be a prefix) before the names'
// fields were seen or passed, or msg is not a valid encoding; the names found so far are
// returned either way. Empty names mean the request leaves them to the defaults (see
// ResolveDB).
func ReadNames(m *Method, msg []byte) (n Names, complete bool) {
	r, known := ReadRequest(m, msg, false, FieldNames)
	return r.Names, known == FieldNames
}

func (s *RequestScanner) feed(p []byte) {
	if s.w.off == 0 && s.w.end == int64(len(p)) {
		p = s.inPlace(p)
	}
	for !s.done {
		switch s.w.next(&p) {
		case evMore:
			return
		case evEnd:
			s.settle(s.want)
		case evBad:
			s.done = true
		case evField:
			s.field(&s.w.ev)
		case evValue:
			s.value(&s.w.ev)
		}
		if s.known|s.lost == s.want {
			s.done = true
		}
	}
}

// inPlace reads msg, the whole first message with nothing of it read yet (the usual
// case: a Search or Query comes in one DATA frame), field by field in place, as the
// walker would but without its bookkeeping for values split between pieces (which cost
// about 1 µs of a Search's 2). It returns what is left for the walker: nothing, or the
// rest of msg from a group (which no Milvus message has), whose fields the walker passes
// over.
func (s *RequestScanner) inPlace(msg []byte) []byte {
	b := msg
	for len(b) > 0 && !s.done {
		num, typ, n := protowire.ConsumeTag(b)
		if n > 0 && (typ == protowire.StartGroupType || typ == protowire.EndGroupType) {
			s.w.off = int64(len(msg) - len(b))
			return b
		}
		ev := event{kind: evField, num: num, typ: typ}
		m := n
		var val []byte
		if n > 0 {
			switch typ {
			case protowire.VarintType:
				ev.v, m = protowire.ConsumeVarint(b[n:])
			case protowire.BytesType:
				val, m = protowire.ConsumeBytes(b[n:])
			default:
				m = protowire.ConsumeFieldValue(num, typ, b[n:])
			}
		}
		if n < 0 || m < 0 {
			s.done = true // not a valid encoding, as the walker's evBad
			break
		}
		b = b[n+m:]
		if take := s.want1(&ev); take > 0 {
			t := min(len(val), take)
			s.value(&event{kind: evValue, num: num, b: val[:t], whole: t == len(val)})
		}
		if s.known|s.lost == s.want {
			s.done = true
		}
	}
	if !s.done {
		s.settle(s.want) // the end of the message, as the walker's evEnd
		s.done = true
	}
	s.w.off = int64(len(msg))
	return nil
}

// settle marks fields known with what was read of them (nothing: empty).
func (s *RequestScanner) settle(f Fields) {
	f &= s.want &^ (s.known | s.lost)
	if f&FieldConsistency != 0 && !s.useDefault {
		s.r.Consistency = consistencyName(s.level)
	}
	s.known |= f
}

func (s *RequestScanner) field(ev *event) {
	if take := s.want1(ev); take > 0 {
		s.w.decide(takeValue, take)
	}
}

// want1 reads the field of ev (a header, with its value when a varint) and returns how
// many bytes of its value to take (0: none, pass over it).
func (s *RequestScanner) want1(ev *event) int {
	l := s.lay
	for s.next < len(l.settled) && l.settled[s.next].num < ev.num {
		s.settle(l.settled[s.next].f)
		s.next++
	}
	open := s.want &^ (s.known | s.lost)
	bytes, varint := ev.typ == protowire.BytesType, ev.typ == protowire.VarintType
	switch {
	case ev.num == l.db && bytes && open&FieldDB != 0,
		ev.num == l.collection && bytes && open&FieldCollection != 0:
		return valueCap
	case ev.num == l.params && bytes && open&FieldTopK != 0:
		return pairCap
	case ev.num == l.level && varint:
		s.level = int32(ev.v)
	case ev.num == l.guarantee && varint:
		s.r.Guarantee = ev.v
	case ev.num == l.useDefault && varint:
		s.useDefault = ev.v != 0
		s.settle(FieldConsistency)
	case ev.num == l.rows && varint && open&FieldRows != 0:
		s.r.Rows = intValue(l.rowsKind, ev.v)
		s.settle(FieldRows)
	case ev.num == l.nq && varint && open&FieldNQ != 0:
		s.r.NQ = intValue(l.nqKind, ev.v)
		s.settle(FieldNQ)
	}
	return 0
}

func (s *RequestScanner) value(ev *event) {
	if ev.num == s.lay.params {
		s.pair(ev.b, ev.whole)
		return
	}
	f, dst, seen := FieldDB, &s.r.DB, &s.seen[0]
	if ev.num == s.lay.collection {
		f, dst, seen = FieldCollection, &s.r.Collection, &s.seen[1]
	}
	if !ev.whole {
		// Longer than any name Milvus accepts; not read.
		s.lost |= f
		return
	}
	if string(ev.b) != *seen {
		*seen = string(ev.b)
	}
	*dst = *seen
	s.settle(f)
}

// pairCap is the most of a search_params pair read: a "topk" pair is about 10 bytes; a
// longer pair's key is still read from its first bytes.
const pairCap = 64

// maxTopK bounds the digits of a topk value read.
const maxTopK = 32

// pair reads a search_params pair (key=1, value=2) from its first bytes b (all of it when
// whole). Milvus takes the first pair whose key is "topk" (GetAttrByKeyFromRepeatedKV).
func (s *RequestScanner) pair(b []byte, whole bool) {
	var key, val []byte
	haveKey, haveVal := false, false
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			break // cut by the end of what was taken
		}
		b = b[n:]
		switch {
		case f.typ == protowire.BytesType && f.num == 1:
			key, haveKey = f.b, true
		case f.typ == protowire.BytesType && f.num == 2:
			val, haveVal = f.b, true
		}
	}
	switch {
	case !haveKey || string(key) != topKKey:
		return // another key (one cut short is too long to be "topk")
	case haveVal && len(val) <= maxTopK:
		s.r.TopK, _ = parseInt(val)
		s.settle(FieldTopK)
	case !haveVal && whole:
		s.settle(FieldTopK) // no value: Milvus fails the Search; 0 here
	default:
		s.lost |= FieldTopK // a value too long to be a number
	}
}

// parseInt is strconv.ParseInt(string(b), 10, 64) without the allocation.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}
