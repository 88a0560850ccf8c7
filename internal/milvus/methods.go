// Package milvus holds milvus-lb's knowledge of the Milvus protocol: which paths are
// MilvusService methods, how they are classified, what a request names and counts (its
// database, collection, consistency level, rows, nq and topk), what a reply's Milvus
// status says, and what a call's metadata tells of its user and request id. All of it is
// read from the first bytes of messages as they pass, never by decoding them whole.
package milvus

import (
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ServicePrefix is the path prefix of every MilvusService RPC.
const ServicePrefix = "/" + "milvus.proto.milvus.MilvusService" + "/"

// Method describes one MilvusService RPC.
type Method struct {
	Name      string // "Search"
	Streaming bool   // CreateReplicateStream and DumpMessages

	request *requestLayout // where its request carries names and counts
	reply   replyLayout    // where its reply carries its Status
}

var consistencyEnum = commonpb.ConsistencyLevel(0).Descriptor()

var methods = func() map[string]*Method {
	sd := milvuspb.MilvusService_ServiceDesc
	m := make(map[string]*Method, len(sd.Methods)+len(sd.Streams))
	for _, md := range sd.Methods {
		m[md.MethodName] = &Method{Name: md.MethodName}
	}
	for _, st := range sd.Streams {
		m[st.StreamName] = &Method{Name: st.StreamName, Streaming: true}
	}
	// The message layouts come from the descriptors of the same generated package.
	descs := milvuspb.File_milvus_proto.Services().ByName("MilvusService").Methods()
	for name, meth := range m {
		if md := descs.ByName(protoreflect.Name(name)); md != nil {
			meth.request = newRequestLayout(md.Input())
			meth.reply = newReplyLayout(md.Output())
		}
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
