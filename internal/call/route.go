package call

import (
	"net"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// route finds the rule for a call on listener l. Rules match the :authority (Host), as on
// the ALB. One exception: on a TLS connection whose :authority is an IP address, or names
// no rule, the TLS server name (SNI) is tried too. A client that dials an address and sets
// only the server name sends that: grpc-js, and so the Milvus Node SDK, maps its
// serverName option to grpc.ssl_target_name_override, which changes SNI but not
// :authority.
func route(l *gateway.Listener, authority, sni, path string) (*router.Entry[*gateway.Backend], *Failure) {
	host := HostOnly(authority)
	names := [2]string{authority, ""}
	if sni != "" && !strings.EqualFold(sni, host) {
		names[1] = sni
		if net.ParseIP(strings.Trim(host, "[]")) != nil {
			// An address says nothing about which site is meant; the server name does.
			names[0], names[1] = sni, authority
		}
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if e := l.Routes.Match(n, path); e != nil {
			return e, nil
		}
	}
	return nil, NoRule(host, path)
}

// HostOnly is the host of an :authority or Host value, without its port: what
// net.SplitHostPort returns for host:port and [v6]:port, h itself otherwise (without the
// error SplitHostPort allocates for the common name without a port).
func HostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]:"); i > 0 && !strings.Contains(h[i+2:], ":") {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 && !strings.ContainsAny(h[:i], "[]") {
		return h[:i]
	}
	return h
}
