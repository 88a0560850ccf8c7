package router

import (
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/glob"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// Request is what a route's conditions test that is known from a call's headers.
type Request struct {
	Path    string              // the path, without the query
	Query   string              // the raw query ("" for gRPC)
	Method  string              // the HTTP method
	Headers []hpack.HeaderField // the regular fields, names in lower case
	Source  netip.Addr          // the client's address (the connection's peer)
	// Milvus is the MilvusService method the path names; nil for REST, other gRPC
	// services and methods newer than milvus-lb's descriptors.
	Milvus *milvus.Method
}

// NameSet is a set of the things a decision may read from a call's first request message.
type NameSet uint8

const (
	NameDB          NameSet = 1 << iota // the db_name field
	NameCollection                      // the collection_name field
	NameConsistency                     // the consistency level (and guarantee_timestamp) of Search, Query, HybridSearch
	NameSize                            // the message's length (its gRPC length prefix)
)

// Names are what the first request message of a call says, as far as it was read.
type Names struct {
	DB, Collection string // as the fields carry them; "" when absent
	// Consistency is the level the request asks for ("Strong", "Session", "Bounded",
	// "Eventually", "Customized"); "" when it leaves it to the collection's default
	// (use_default_consistency) or its method has no level.
	Consistency string
	// Guarantee is the request's guarantee_timestamp (a Milvus hybrid timestamp), known
	// with Consistency; 0 when absent.
	Guarantee uint64
	Size      int64   // the message's length, from its length prefix
	Known     NameSet // which of the above were read, or are certainly absent
}

// dbnameKey is the gRPC metadata that names the database when the request does not
// (Milvus's proxy reads it; research/protocol.md 2.4).
const dbnameKey = "dbname"

// Database is the database a call uses, resolved as Milvus resolves it: the request's
// db_name field, else the dbname metadata, else "default".
func (n *Names) Database(headers []hpack.HeaderField) string {
	if n.DB != "" {
		return n.DB
	}
	for _, hf := range headers {
		if hf.Name == dbnameKey && hf.Value != "" {
			return hf.Value
		}
	}
	return "default"
}

// Conditions are a route's conditions, compiled. Immutable; safe for concurrent use.
type Conditions struct {
	head []cond // decided by the headers
	msg  []cond // decided by the first request message
	need NameSet
}

type cond struct {
	field   config.ConditionField
	name    string // http-header
	pats    []glob.Pattern
	query   []queryPattern
	nets    []netip.Prefix
	classes [4]bool // operation, by milvus.Class
}

type queryPattern struct {
	key   glob.Pattern
	any   bool // no key: any parameter
	value glob.Pattern
}

// Compile compiles cs; nil when there are none. A value that does not parse (translation
// reports those) matches nothing.
func Compile(cs []config.Condition) *Conditions {
	if len(cs) == 0 {
		return nil
	}
	out := &Conditions{}
	for _, c := range cs {
		k := cond{field: c.Field, name: strings.ToLower(c.Name)}
		fold := c.Field == config.FieldHostHeader || c.Field == config.FieldHTTPHeader
		for _, v := range c.Values {
			switch c.Field {
			case config.FieldSourceIP:
				if p, err := netip.ParsePrefix(v); err == nil {
					k.nets = append(k.nets, p.Masked())
				}
			case config.FieldOperation:
				if cl, ok := milvus.ParseClass(v); ok {
					k.classes[cl] = true
				}
			default:
				k.pats = append(k.pats, pattern(v, fold, c.Exact))
			}
		}
		for _, q := range c.Query {
			k.query = append(k.query, queryPattern{key: pattern(q.Key, true, c.Exact), any: q.Key == "", value: pattern(q.Value, true, c.Exact)})
		}
		if c.Message() {
			out.msg = append(out.msg, k)
			out.need |= messageName(c.Field)
		} else {
			out.head = append(out.head, k)
		}
	}
	return out
}

// pattern compiles v as an ALB pattern (fold: without case), or literally when exact.
func pattern(v string, fold, exact bool) glob.Pattern {
	if exact {
		return glob.Literal(v)
	}
	return glob.New(v, fold)
}

func messageName(f config.ConditionField) NameSet {
	switch f {
	case config.FieldDatabase:
		return NameDB
	case config.FieldCollection:
		return NameCollection
	}
	return NameConsistency
}

// Need is what the conditions read from the first request message (none: 0).
func (c *Conditions) Need() NameSet {
	if c == nil {
		return 0
	}
	return c.need
}

// Head reports whether the conditions decided by the headers hold for a call to host
// (the name the route was found under, lower case, without a port).
func (c *Conditions) Head(host string, r *Request) bool {
	if c == nil {
		return true
	}
	for i := range c.head {
		if !c.head[i].head(host, r) {
			return false
		}
	}
	return true
}

func (k *cond) head(host string, r *Request) bool {
	switch k.field {
	case config.FieldHostHeader:
		return glob.Any(k.pats, host)
	case config.FieldPathPattern:
		return glob.Any(k.pats, r.Path)
	case config.FieldHTTPHeader:
		for _, hf := range r.Headers {
			if hf.Name == k.name && glob.Any(k.pats, hf.Value) {
				return true
			}
		}
		return false
	case config.FieldMethod:
		return glob.Any(k.pats, r.Method)
	case config.FieldQueryString:
		return k.queryMatch(r.Query)
	case config.FieldSourceIP:
		a := r.Source.Unmap()
		for _, n := range k.nets {
			if n.Contains(a) {
				return true
			}
		}
		return false
	case config.FieldOperation:
		c, ok := class(r)
		return ok && k.classes[c]
	}
	return false
}

// class is the operation class of a call: its method's, Admin for a MilvusService method
// newer than milvus-lb's descriptors, none for anything else.
func class(r *Request) (milvus.Class, bool) {
	if r.Milvus != nil {
		return r.Milvus.Class, true
	}
	if strings.HasPrefix(r.Path, milvus.ServicePrefix) {
		return milvus.Admin, true
	}
	return 0, false
}

// queryMatch reports whether a parameter of the raw query q matches one of the pairs.
func (k *cond) queryMatch(q string) bool {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		key, val, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(kv, "%+") {
			key, _ = url.QueryUnescape(key)
			val, _ = url.QueryUnescape(val)
		}
		for _, p := range k.query {
			if (p.any || p.key.Match(key)) && p.value.Match(val) {
				return true
			}
		}
	}
	return false
}

// Message reports whether the conditions decided by the first request message hold, from
// what was read of it. A condition on a name that was not read (the message was
// compressed, or its name came after the first 64 KiB) does not hold, so the call goes
// by the routes that do not ask.
func (c *Conditions) Message(r *Request, n *Names) bool {
	if c == nil {
		return true
	}
	for i := range c.msg {
		if !c.msg[i].message(r, n) {
			return false
		}
	}
	return true
}

func (k *cond) message(r *Request, n *Names) bool {
	switch k.field {
	case config.FieldDatabase:
		return n.Known&NameDB != 0 && glob.Any(k.pats, n.Database(r.Headers))
	case config.FieldCollection:
		return n.Known&NameCollection != 0 && n.Collection != "" && glob.Any(k.pats, n.Collection)
	case config.FieldConsistency:
		return n.Known&NameConsistency != 0 && n.Consistency != "" && glob.Any(k.pats, n.Consistency)
	}
	return false
}
