package milvus

import "strings"

// CacheMethods are the methods milvus-lb's reply cache may answer (issue 15), and what it
// serves unless an Ingress names others: the searches and queries, whose answers a RAG or
// semantic-cache workload repeats, and the metadata reads clients repeat on every connect.
// Every one is a unary Read.
var CacheMethods = []string{
	"Search", "HybridSearch", "Query",
	"DescribeCollection", "HasCollection", "ShowCollections", "DescribeDatabase", "ListDatabases",
	"DescribeIndex", "GetLoadState", "DescribeAlias", "ListAliases",
}

// Cacheable reports whether the cache may answer method name: one of CacheMethods.
func Cacheable(name string) bool {
	for _, n := range CacheMethods {
		if n == name {
			return true
		}
	}
	return false
}

// HasConsistency reports whether m's request has a consistency level (Search, Query,
// HybridSearch).
func (m *Method) HasConsistency() bool { return m.request.level != 0 }

// Invalidation is what a call that changes something makes stale in the reply cache.
type Invalidation uint8

const (
	// InvalidateNone: the method changes nothing (every read-only method).
	InvalidateNone Invalidation = iota
	// InvalidateCollection: the data of the collection it names (writes).
	InvalidateCollection
	// InvalidateCollectionDDL: the collection it names, and its database's listings
	// (DDL on a collection: create, drop, load, release, index changes, ...).
	InvalidateCollectionDDL
	// InvalidateDatabase: every entry of its database (alias changes, which change what
	// a name means; writes that name a list of collections).
	InvalidateDatabase
	// InvalidateBackend: every entry of the backend (database DDL, renames, which may
	// move a collection to another database, and the admin methods that change
	// something: users, roles and privileges change what a user may see).
	InvalidateBackend
)

// Invalidates is what a call of m makes stale, from its class and its request's fields.
func (m *Method) Invalidates() Invalidation {
	switch {
	case m.ReadOnly:
		return InvalidateNone
	case m.Class == Write && m.request.collection != 0:
		return InvalidateCollection
	case m.Class == Write:
		return InvalidateDatabase // Flush and others name a list of collections
	case m.Class == DDL && m.alias:
		return InvalidateDatabase
	case m.Class == DDL && m.request.collection != 0:
		return InvalidateCollectionDDL
	}
	// Database DDL, a rename (which may move a collection to another database), admin.
	return InvalidateBackend
}

var invalidationNames = [...]string{InvalidateNone: "none", InvalidateCollection: "write",
	InvalidateCollectionDDL: "ddl", InvalidateDatabase: "database", InvalidateBackend: "backend"}

// String names what made entries stale, for metrics: a write, DDL on a collection, a
// change to a whole database (aliases), to the whole backend (databases, users, roles).
func (i Invalidation) String() string { return invalidationNames[i] }

// RESTPrefix is the path prefix of Milvus's REST v2 API.
const RESTPrefix = "/v2/vectordb/"

// restReads are the last path segments of the REST v2 calls that change nothing
// (milvus/internal/distributed/proxy/httpserver/constant.go: the REST API has no
// descriptors to read them from).
var restReads = []string{"search", "advanced_search", "hybrid_search", "query", "get", "list", "describe", "has",
	"get_load_state", "get_stats", "get_progress", "list_by_role", "list_privileges"}

// RESTInvalidates is what a REST call to path makes stale in the reply cache: nothing for
// a read, else every entry of the backend (the names are in its JSON body, which is not
// read).
func RESTInvalidates(path string) Invalidation {
	rest, ok := strings.CutPrefix(path, RESTPrefix)
	if !ok {
		return InvalidateNone
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	for _, r := range restReads {
		if rest == r {
			return InvalidateNone
		}
	}
	return InvalidateBackend
}
