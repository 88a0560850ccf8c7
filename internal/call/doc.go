// Package call is the per-call decision of milvus-lb: every rule that applies to one call,
// written once, with no socket I/O, for every data path that moves a call's bytes (the
// HTTP/2 relay for gRPC and REST over HTTP/2, net/http for REST over HTTP/1.1). It routes
// a call, picks its endpoint (with a Done that ends the endpoint's accounting), decides
// ejection and retries, builds the headers sent upstream, scans gRPC length prefixes
// against the message limits, maps every failure to what the client is told, and makes
// the record of the call that metrics and logs read.
package call
