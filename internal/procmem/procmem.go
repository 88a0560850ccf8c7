// Package procmem keeps the process's resident memory to what serving uses. Starting
// milvus-lb runs the initialisation of every package linked in (the Kubernetes client's
// schemes, the Milvus protobuf descriptors, gRPC), and the kernel maps the pages of the
// executable they touch 64 KiB at a time (fault-around): about 38 MiB of a 46 MiB
// resident set at rest are the executable's own pages, most of them never used again.
// ReleaseStartupPages drops them from the resident set once the first configuration
// serves (they stay in the page cache, as any file's pages read once).
package procmem

// Resident is the process's resident set as /proc/self/status has it, in bytes: the
// anonymous part (heap, stacks) and the file-backed part (mostly the executable).
type Resident struct {
	Anon, File int64
}
