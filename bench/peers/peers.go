// Package peers holds the configurations of the balancers milvus-lb is measured against,
// as templates the benchmark harness fills in with ports and file names. They are tuned
// for the workloads (see docs/benchmarks.md): each terminates TLS from the client with
// HTTP/2 and speaks h2c to the same fake Milvus backend, with kept-alive upstream
// connections and limits raised so that no large message is refused.
package peers

import "embed"

// FS holds nginx.conf.tmpl, haproxy.cfg.tmpl and Caddyfile.tmpl. Their data is a
// harness.PeerConfig.
//
//go:embed *.tmpl
var FS embed.FS
