// Package milvus holds milvus-lb's knowledge of the Milvus protocol: which paths are
// MilvusService methods, how they are classified, what a request names and counts (its
// database, collection, consistency level, rows, nq and topk), what a reply's Milvus
// status says, and what a call's metadata tells of its user and request id. All of it is
// read from the first bytes of messages as they pass, never by decoding them whole.
package milvus

import (
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
)

// ServicePrefix is the path prefix of every MilvusService RPC.
const ServicePrefix = "/" + "milvus.proto.milvus.MilvusService" + "/"

// Method describes one MilvusService RPC.
type Method struct {
	Name      string // "Search"
	Streaming bool   // CreateReplicateStream and DumpMessages
	Class     Class  // what it does (class.go)
	// ReadOnly: it changes nothing, so sending it again (a retry on another endpoint)
	// cannot do anything twice. Every Read is; so are the Admin methods that only look.
	ReadOnly bool

	request *requestLayout // where its request carries names and counts
	reply   replyLayout    // where its reply carries its Status
	// cache and replyCache are what the reply cache reads (cachekey.go).
	cache      cacheLayout
	replyCache replyCacheLayout
	alias      bool // its request names an alias: it changes what a name means
}

var consistencyEnum = commonpb.ConsistencyLevel(0).Descriptor()

var methods = func() map[string]*Method {
	sd := serviceDescriptor().Methods()
	m := make(map[string]*Method, sd.Len())
	for i := range sd.Len() {
		md := sd.Get(i)
		name := string(md.Name())
		c, ro := classify(md)
		m[name] = &Method{Name: name, Streaming: md.IsStreamingClient() || md.IsStreamingServer(), Class: c, ReadOnly: ro,
			request: newRequestLayout(md.Input()), reply: newReplyLayout(md.Output()),
			cache: newCacheLayout(md.Input()), replyCache: newReplyCacheLayout(md.Output()),
			alias: md.Input().Fields().ByName("alias") != nil}
	}
	return m
}()

// Lookup returns the MilvusService method a request path names, or nil for any other path
// (another gRPC service, REST, or garbage). The result is shared and must not be changed.
func Lookup(path string) *Method {
	name, ok := strings.CutPrefix(path, ServicePrefix)
	if !ok {
		return nil
	}
	return methods[name]
}

// Methods returns the number of MilvusService methods known.
func Methods() int { return len(methods) }
