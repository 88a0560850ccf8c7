package call

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// Conn is what the upstream headers of a call say about the client connection it came
// on, as the ALB adds it. Immutable once made; one per client connection.
type Conn struct {
	ClientIP   string // for X-Forwarded-For; "" when unknown
	TLS        bool   // X-Forwarded-Proto https
	Port       string // X-Forwarded-Port
	ClientCert string // X-Amzn-Mtls-Clientcert value, "" without a client certificate
}

// ClientCertValue is a client's certificate chain as URL-encoded PEM, the ALB's format
// for X-Amzn-Mtls-Clientcert (mutual-authentication passthrough mode).
func ClientCertValue(chain []*x509.Certificate) string {
	var b []byte
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return url.QueryEscape(string(b))
}

// Upstream appends to dst the header fields a call sends to its backend, from the
// client's regular (non-pseudo) fields in, names in lower case: the client's metadata
// untouched (authorization, dbname, identifier, client-request-id, grpc-timeout, ...)
// without the connection-specific fields (RFC 9110 §7.6.1, RFC 9113 §8.2.2) and those the
// Connection field names, and without the client's own X-Forwarded-Proto, -Port and
// client certificate; then `te: trailers` for gRPC, and X-Forwarded-For (the client's
// last value, then this client's address), X-Forwarded-Proto, X-Forwarded-Port and the
// client certificate as the ALB adds them. The W3C trace context is the call's (trace: the
// client's, or the balancer's span continuing it). Every data path builds upstream
// headers here.
func (c *Conn) Upstream(dst, in []hpack.HeaderField, grpc bool, trace TraceContext) []hpack.HeaderField {
	var named string // the Connection field's value: more fields to drop (HTTP/1.1 only)
	xff := ""
	start := len(dst)
	for _, hf := range in {
		switch {
		case hf.Name == "connection":
			named = hf.Value
			continue
		case hopByHop(hf.Name), hf.Name == "x-amzn-mtls-clientcert", hf.Name == "x-forwarded-proto", hf.Name == "x-forwarded-port",
			hf.Name == "traceparent", hf.Name == "tracestate":
			continue
		case hf.Name == "x-forwarded-for":
			xff = hf.Value
			continue
		}
		dst = append(dst, hpack.HeaderField{Name: hf.Name, Value: hf.Value, Sensitive: hf.Sensitive || hf.Name == "authorization"})
	}
	if named != "" {
		// Rare (HTTP/2 refuses the field): the fields it names are taken out after the
		// one walk, which every other request makes alone.
		dst = dropListed(dst, start, named)
	}
	if trace.Traceparent != "" {
		dst = append(dst, hpack.HeaderField{Name: "traceparent", Value: trace.Traceparent})
	}
	if trace.Tracestate != "" {
		dst = append(dst, hpack.HeaderField{Name: "tracestate", Value: trace.Tracestate})
	}
	if grpc {
		// gRPC requires it (the gRPC over HTTP/2 spec), and it is the one value of a
		// connection-specific field HTTP/2 allows.
		dst = append(dst, hpack.HeaderField{Name: "te", Value: "trailers"})
	}
	if c.ClientIP != "" {
		if xff != "" {
			xff += ", " + c.ClientIP
		} else {
			xff = c.ClientIP
		}
	}
	if xff != "" {
		dst = append(dst, hpack.HeaderField{Name: "x-forwarded-for", Value: xff})
	}
	proto := "http"
	if c.TLS {
		proto = "https"
	}
	dst = append(dst, hpack.HeaderField{Name: "x-forwarded-proto", Value: proto},
		hpack.HeaderField{Name: "x-forwarded-port", Value: c.Port})
	if c.ClientCert != "" {
		dst = append(dst, hpack.HeaderField{Name: "x-amzn-mtls-clientcert", Value: c.ClientCert})
	}
	return dst
}

// Downstream reports whether a response field (lower case) goes back to the client:
// every field but the connection-specific ones.
func Downstream(name string) bool { return !hopByHop(name) }

// hopByHop reports a connection-specific field (lower case): never forwarded either way.
func hopByHop(name string) bool {
	switch name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade",
		"te", "trailer", "proxy-authenticate", "proxy-authorization":
		return true
	}
	return false
}

// dropListed removes from dst[start:] the fields the Connection value v names.
func dropListed(dst []hpack.HeaderField, start int, v string) []hpack.HeaderField {
	kept := dst[:start]
	for _, hf := range dst[start:] {
		if !listed(v, hf.Name) {
			kept = append(kept, hf)
		}
	}
	clear(dst[len(kept):]) // no strings kept alive past the length of a pooled list
	return kept
}

// listed reports whether the comma-separated list v names name (case-insensitively).
func listed(v, name string) bool {
	for tok := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(tok), name) {
			return true
		}
	}
	return false
}
