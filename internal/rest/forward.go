package rest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forward sends r to the call's endpoint and copies the response to w. It returns an
// error only if nothing was written to w; a failure after the response began aborts it,
// so that the client does not take a truncated body for a whole one.
func (h *Handler) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body io.ReadCloser, c *call.Call, fields []hpack.HeaderField) error {
	be := c.Backend()
	rt, scheme := h.Transports.For(useH2(be.Backend), be.TLS)
	out := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: scheme, Host: c.Rec.Endpoint, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h.upstreamHeader(r, fields, c.Trace()),
		Body:          body,
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := rt.RoundTrip(out.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dst := w.Header()
	for k, vv := range resp.Header {
		if call.Downstream(strings.ToLower(k)) {
			dst[k] = vv
		}
	}
	w.WriteHeader(resp.StatusCode)
	c.Rec.Status = resp.StatusCode
	n, err := copyBody(w, resp)
	c.Moved(0, n)
	if err != nil && r.Context().Err() == nil {
		// The backend failed mid-response; an HTTP response cannot be ended with an
		// error status once it has begun.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	return nil
}

// copyBody copies a response body as it arrives, flushing when its length is not known
// (a streamed answer must not wait in a buffer), and returns the bytes written.
func copyBody(w http.ResponseWriter, resp *http.Response) (written int64, err error) {
	flush := resp.ContentLength < 0
	rc := http.NewResponseController(w)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr // the client is gone; the deferred Close ends the backend's side
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// headerFields are a request's header fields with lower-case names, as HTTP/2 has them:
// the form every per-call rule reads.
func headerFields(hdr http.Header) []hpack.HeaderField {
	in := make([]hpack.HeaderField, 0, len(hdr)+1)
	for k, vv := range hdr {
		name := strings.ToLower(k)
		for _, v := range vv {
			in = append(in, hpack.HeaderField{Name: name, Value: v})
		}
	}
	return in
}

// upstreamHeader is the request header sent to the backend, by the one upstream rule
// (call.Conn.Upstream) that the relay applies to gRPC calls too.
func (h *Handler) upstreamHeader(r *http.Request, in []hpack.HeaderField, trace call.TraceContext) http.Header {
	conn := call.Conn{TLS: h.Port.TLS, Port: strconv.Itoa(h.Port.Number)}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		conn.ClientIP = ip
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		conn.ClientCert = call.ClientCertValue(r.TLS.PeerCertificates)
	}
	fields := conn.Upstream(make([]hpack.HeaderField, 0, len(in)+6), in, false, trace)
	out := make(http.Header, len(fields))
	for _, f := range fields {
		k := http.CanonicalHeaderKey(f.Name)
		out[k] = append(out[k], f.Value)
	}
	return out
}
