package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// addLimitFlags declares the flags of the limits in docs/limits.md.
func addLimitFlags(f *pflag.FlagSet, o *dataPlaneOptions) {
	f.Var(byteSize{&o.Limits.MaxRequestMessageBytes}, "max-request-message-size",
		"largest gRPC request message (or REST request body) passed to a backend; larger ones get RESOURCE_EXHAUSTED (REST: 413); 0 = no limit")
	f.Var(byteSize{&o.Limits.MaxResponseMessageBytes}, "max-response-message-size",
		"largest gRPC response message passed to a client; a larger one ends the call with RESOURCE_EXHAUSTED; 0 = no limit")
	f.Var(intByteSize{&o.Listener.MaxHeaderBytes}, "max-header-list-size",
		"largest request header list (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1 header bytes)")
	f.IntVar(&o.Listener.MaxConnections, "max-connections", o.Listener.MaxConnections,
		"client connections open at once over all ports; beyond it new ones are closed at once; 0 = no limit")
	f.DurationVar(&o.Listener.IdleTimeout, "idle-timeout", o.Listener.IdleTimeout,
		"close a connection with no call in flight whose client sent nothing of its own (pings count) for this long; 0 = never")
	f.DurationVar(&o.Listener.WriteByteTimeout, "write-timeout", o.Listener.WriteByteTimeout,
		"close an HTTP/2 connection whose client has not read any of what the balancer sends for this long; 0 = never")
	f.DurationVar(&o.Listener.PingInterval, "ping-interval", o.Listener.PingInterval,
		"ping an HTTP/2 client after this long without a frame from it; 0 = never")
	f.DurationVar(&o.Listener.PingTimeout, "ping-timeout", o.Listener.PingTimeout,
		"close an HTTP/2 connection whose client does not answer a ping within this long")
}

// byteSize is a flag of a size in bytes: a number, optionally with a binary unit
// (Ki, Mi, Gi, with or without a trailing B): "256Mi", "64MiB", "1048576".
type byteSize struct{ p *int64 }

func (b byteSize) String() string {
	if b.p == nil {
		return "0"
	}
	return formatSize(*b.p)
}

func (b byteSize) Set(s string) error {
	n, err := parseSize(s, math.MaxInt64)
	if err != nil {
		return err
	}
	*b.p = n
	return nil
}

func (byteSize) Type() string { return "size" }

// intByteSize is byteSize for an int.
type intByteSize struct{ p *int }

func (b intByteSize) String() string {
	if b.p == nil {
		return "0"
	}
	return formatSize(int64(*b.p))
}

func (b intByteSize) Set(s string) error {
	n, err := parseSize(s, math.MaxInt32)
	if err != nil {
		return err
	}
	*b.p = int(n)
	return nil
}

func (intByteSize) Type() string { return "size" }

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}, {"B", 0}}

func parseSize(s string, max int64) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: want a number of bytes, optionally with Ki, Mi or Gi (e.g. 256Mi)", s)
	}
	if n > max>>shift {
		return 0, fmt.Errorf("%q is too large (at most %s)", s, formatSize(max))
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range sizeUnits[:3] {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix[:2]
		}
	}
	return strconv.FormatInt(n, 10)
}
