// Package h2floor measures the least work in the process that a balancer reading gRPC
// calls over HTTP/2 does for one Search call (and one 3 MiB Insert) beyond what a
// TLS-terminating TCP pipe does: the call's frames read and written both ways with
// golang.org/x/net/http2's Framer, their header blocks decoded and encoded with its
// HPACK (a block seen before copied, not encoded again), in memory, on one goroutine,
// with no relaying logic, routing, flow control, system calls or scheduling.
// docs/benchmarks.md ("The HTTP/2 floor under Search") adds it to the TLS pipe's measured
// cost per call to bound what such a balancer can reach against the pipe.
//
// Run: go test ./bench/h2floor -run '^$' -bench . -benchmem
package h2floor
