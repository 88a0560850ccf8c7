package call

import (
	"strconv"
	"time"
)

// parseTimeout reads a grpc-timeout value: up to 8 digits and a unit (H, M, S, m, u, n),
// per the gRPC over HTTP/2 spec.
func parseTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// Timeout takes the call's grpc-timeout header value v and returns how long the data
// path's timer is to run; ok is false when there is none (or it is malformed). The
// deadline it sets, counted from the call's start (Begin), is the call's own: no attempt
// goes to another endpoint after it (Retry), and a client's cancellation close to it is
// the endpoint's timeout (Cancelled).
func (c *Call) Timeout(v string) (d time.Duration, ok bool) {
	if d, ok = parseTimeout(v); ok {
		c.deadline = c.Rec.Start.Add(d)
	}
	return d, ok
}
