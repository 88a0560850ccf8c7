package router

import "strings"

// NormalizeHost is h as rules match it: without a port or a trailing dot, lower case.
func NormalizeHost(h string) string {
	if strings.IndexByte(h, ':') >= 0 {
		h = HostOnly(h)
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
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
