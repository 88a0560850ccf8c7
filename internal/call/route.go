package call

import "strings"

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
