package proxy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
)

// replayGuard remembers whether the request body was read, so a request whose body was
// never touched may go to another endpoint. Close is a no-op: the server owns the body.
type replayGuard struct {
	io.ReadCloser
	read bool
}

func (g *replayGuard) Read(p []byte) (int, error) {
	g.read = true
	return g.ReadCloser.Read(p)
}

func (g *replayGuard) Close() error { return nil }

// hopHeaders are connection-specific (RFC 9110 §7.6.1, RFC 9113 §8.2.2) and never
// forwarded. "Te: trailers" is the exception gRPC needs, and is set again below.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade",
	"Te", "Trailer", "Proxy-Authenticate", "Proxy-Authorization",
}

// clientCertHeader carries the client certificate to the backend in mutual-authentication
// passthrough mode, under the ALB's name for it.
const clientCertHeader = "X-Amzn-Mtls-Clientcert"

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forward sends r to ep and copies the response to w. It returns an error only if nothing
// was written to w; failures after the response started end it in place (a gRPC error in
// the trailers, or a reset stream).
func (h *Handler) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body io.ReadCloser,
	be *gateway.Backend, ep *balancer.Endpoint, isGRPC bool, rec *call.Record) error {
	ep.Start()
	defer ep.Done()

	rt, scheme := h.Transports.For(useH2(be.Backend, isGRPC), be.TLS)
	out := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: scheme, Host: ep.Addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        outHeader(r, h.TLS, h.Port),
		Body:          body,
		ContentLength: r.ContentLength,
		Host:          r.Host,
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out = out.WithContext(ctx)
	resp, err := rt.RoundTrip(out)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	dst := w.Header()
	for k, vv := range resp.Header {
		if isHop(k) {
			continue
		}
		dst[k] = vv
	}
	// Trailers-Only (a gRPC error without a message) arrives with no body: answer it with
	// one HEADERS frame that ends the stream, never HEADERS then an empty DATA frame, which
	// some clients read as "closed the stream without sending trailers".
	if resp.ContentLength == 0 || resp.Body == http.NoBody {
		w.WriteHeader(resp.StatusCode)
		h.record(rec, resp, isGRPC)
		return nil
	}
	resp.Body = h.Limits.limitResponse(resp.Body, isGRPC)
	w.WriteHeader(resp.StatusCode)
	flush := isGRPC || resp.ContentLength < 0
	rc := http.NewResponseController(w)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var copyErr error
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// The client is gone; the deferred Close resets the backend stream.
				copyErr = werr
				break
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			copyErr = rerr
			break
		}
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	if copyErr != nil && r.Context().Err() == nil {
		// The backend failed mid-response (or the call's deadline passed); the client is
		// still there and must learn why.
		if lf := limitFailure(body); lf != nil {
			copyErr = lf
		}
		f := classify(ctx, copyErr, be.Service+":"+be.Port)
		if isGRPC {
			if resp.Trailer.Get("Grpc-Status") == "" {
				setGRPCErrorTrailer(w, f)
			}
			rec.Code = f.code
			return nil
		}
		// An HTTP/1.1 response cannot be ended with an error status once it has begun;
		// abort it so the client does not take a truncated body for a whole one.
		panic(http.ErrAbortHandler)
	}
	h.record(rec, resp, isGRPC)
	return nil
}

func (h *Handler) record(rec *call.Record, resp *http.Response, isGRPC bool) {
	if !isGRPC {
		rec.Status = resp.StatusCode
		return
	}
	s := resp.Trailer.Get("Grpc-Status")
	if s == "" {
		s = resp.Header.Get("Grpc-Status")
	}
	if n, err := strconv.Atoi(s); err == nil {
		rec.Code = codes.Code(n)
	} else {
		rec.Code = codes.Unknown
	}
}

func isHop(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// outHeader is the request header sent to the backend: the client's metadata untouched
// (authorization, dbname, identifier, client-request-id, grpc-timeout, ...) minus
// connection-specific fields, plus the X-Forwarded-* fields the ALB adds.
func outHeader(r *http.Request, tls bool, port int) http.Header {
	h := make(http.Header, len(r.Header)+4)
	for k, vv := range r.Header {
		if isHop(k) || k == clientCertHeader {
			continue
		}
		h[k] = vv
	}
	if r.ProtoMajor == 2 {
		// gRPC requires it; net/http hides it among the hop-by-hop fields.
		h["Te"] = []string{"trailers"}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{prior[len(prior)-1] + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
	}
	if tls {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
	h["X-Forwarded-Port"] = []string{strconv.Itoa(port)}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		h[clientCertHeader] = []string{clientCertValue(r.TLS.PeerCertificates)}
	}
	return h
}

// clientCertValue is the client's certificate chain as URL-encoded PEM, the ALB's format
// for X-Amzn-Mtls-Clientcert.
func clientCertValue(chain []*x509.Certificate) string {
	var b []byte
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return url.QueryEscape(string(b))
}
