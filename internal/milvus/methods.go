// Package milvus holds milvus-lb's knowledge of the Milvus protocol: which paths are
// MilvusService methods, how they are classified, and where a request names its database
// and collection.
package milvus

import (
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// ServicePrefix is the path prefix of every MilvusService RPC.
const ServicePrefix = "/" + "milvus.proto.milvus.MilvusService" + "/"

// Method describes one MilvusService RPC.
type Method struct {
	Name      string // "Search"
	Streaming bool   // CreateReplicateStream and DumpMessages
}

var methods = func() map[string]*Method {
	sd := milvuspb.MilvusService_ServiceDesc
	m := make(map[string]*Method, len(sd.Methods)+len(sd.Streams))
	for _, md := range sd.Methods {
		m[md.MethodName] = &Method{Name: md.MethodName}
	}
	for _, st := range sd.Streams {
		m[st.StreamName] = &Method{Name: st.StreamName, Streaming: true}
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
