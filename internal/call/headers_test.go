package call

import (
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"
)

func fields(kv ...string) []hpack.HeaderField {
	var out []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func names(fs []hpack.HeaderField) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name+"="+f.Value)
	}
	return out
}

// What goes upstream is what the ALB sends its targets: the client's metadata as it came,
// without connection-specific fields and those the Connection field names, with the
// X-Forwarded-* fields of this connection (never the client's own claims of them).
func TestUpstreamHeaders(t *testing.T) {
	c := Conn{ClientIP: "192.0.2.7", TLS: true, Port: "443", ClientCert: "PEM"}
	in := fields(
		"x-early", "named after me", "authorization", "cm9vdDpNaWx2dXM=", "dbname", "db1", "grpc-timeout", "10S",
		"connection", "keep-alive, X-Secret,x-early", "x-secret", "drop me", "keep-alive", "300",
		"te", "trailers", "transfer-encoding", "chunked", "upgrade", "h2c",
		"x-forwarded-for", "198.51.100.1", "x-forwarded-for", "203.0.113.9",
		"x-forwarded-proto", "http", "x-forwarded-port", "80", "x-amzn-mtls-clientcert", "forged",
	)
	got := names(c.Upstream(nil, in, true, TraceContext{}))
	want := []string{
		"authorization=cm9vdDpNaWx2dXM=", "dbname=db1", "grpc-timeout=10S", "te=trailers",
		"x-forwarded-for=203.0.113.9, 192.0.2.7", "x-forwarded-proto=https", "x-forwarded-port=443",
		"x-amzn-mtls-clientcert=PEM",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("upstream fields\n got %q\nwant %q", got, want)
	}
	// What dst held before (the relay's pseudo-header fields) is not the client's.
	kept := fields(":path", "/x", "x-secret", "the caller's")
	if got := names(c.Upstream(kept, in, true, TraceContext{})); !slices.Equal(got, append(names(kept), want...)) {
		t.Errorf("after the caller's fields\n got %q\nwant %q", got, append(names(kept), want...))
	}
	out := c.Upstream(nil, in, false, TraceContext{})
	if slices.ContainsFunc(out, func(f hpack.HeaderField) bool { return f.Name == "te" }) {
		t.Errorf("REST calls must not get te: trailers")
	}
	for _, f := range c.Upstream(nil, in, true, TraceContext{}) {
		if f.Name == "authorization" && !f.Sensitive {
			t.Errorf("authorization must be sent as a never-indexed field (HPACK)")
		}
	}
}

func TestUpstreamPlaintextWithoutClientAddress(t *testing.T) {
	c := Conn{Port: "19530"}
	got := names(c.Upstream(nil, fields("dbname", "default"), true, TraceContext{}))
	want := []string{"dbname=default", "te=trailers", "x-forwarded-proto=http", "x-forwarded-port=19530"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDownstreamDropsConnectionFields(t *testing.T) {
	for name, want := range map[string]bool{"grpc-status": true, "content-type": true, "connection": false, "transfer-encoding": false, "te": false} {
		if got := Downstream(name); got != want {
			t.Errorf("Downstream(%q) = %v, want %v", name, got, want)
		}
	}
}

// The trace context sent upstream is the call's (the balancer's span continuing the
// client's), never the client's own fields as well.
func TestUpstreamTraceContext(t *testing.T) {
	c := Conn{Port: "443"}
	in := fields("traceparent", "00-aaaa-bbbb-01", "tracestate", "x=1", "dbname", "db1")
	up := TraceContext{Traceparent: "00-aaaa-cccc-01", Tracestate: "x=1"}
	got := names(c.Upstream(nil, in, true, up))
	want := []string{"dbname=db1", "traceparent=00-aaaa-cccc-01", "tracestate=x=1", "te=trailers", "x-forwarded-proto=http", "x-forwarded-port=443"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
