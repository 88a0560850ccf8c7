// Package milvus holds milvus-lb's knowledge of the Milvus protocol: which paths are
// MilvusService methods, how they are classified, and where a request names its database
// and collection.
package milvus

import "strings"

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
}

var methods = func() map[string]*Method {
	sd := serviceDescriptor().Methods()
	m := make(map[string]*Method, sd.Len())
	for i := range sd.Len() {
		md := sd.Get(i)
		name := string(md.Name())
		c, ro := classify(md)
		m[name] = &Method{Name: name, Streaming: md.IsStreamingClient() || md.IsStreamingServer(), Class: c, ReadOnly: ro}
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
