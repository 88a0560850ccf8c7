// Package relay is milvus-lb's HTTP/2 data path. For gRPC calls it reads frames from the
// client's connection, and writes them, with rewritten headers, to a stream it opens on a shared
// HTTP/2 connection to the chosen backend endpoint, and the backend's frames back the same
// way. No goroutine, no http.Request and no body pipe exist per call; flow control is
// passed through (a peer's WINDOW_UPDATE is returned only once the bytes it covers were
// written on the other side), so the balancer holds at most one window of data per
// stream, whatever the message size. Writes are batched: a connection's frames collect
// in its buffer and go out in one write when the goroutine that produced them is about to
// read from its socket again (sock.Conn.BeforeRead), and writes never block: what the
// kernel does not take waits in the socket's backlog (internal/sock). Requests that are
// not gRPC are handed to Server.REST (internal/rest) on a goroutine each (rest.go). Every
// per-call rule (routing, picking, retries, headers, limits, failures, the record) is
// internal/call's; this package moves bytes.
//
// Files: server.go (a client connection: serve loop, keepalive, close), frame.go (the
// client's frames), streams.go (the client connection's table of streams, opening one),
// stream.go (a relayed call), flow.go (its queues and windows), conn.go (a connection's
// write path), pool.go and backend.go (backend connections and their frames), rest.go (a
// REST request over HTTP/2), headers.go, hpack.go and checks.go (header blocks).
//
// Locking: every h2conn has mu (its write buffer, encoder, connection-level windows,
// peer settings and stream table); every stream has mu (all its fields). A goroutine
// may take a stream's mu and then one connection's mu, never the other way round, never
// two connections' at once, and never two streams' at once.
package relay
