// Package rest serves the calls that are not gRPC, Milvus's REST API above all, with
// net/http: over HTTP/1.1 from net/http's server, and over HTTP/2 from the relay, which
// hands such streams here. It forwards them to the backend over HTTP/1.1 (or HTTP/2 when
// the Ingress says backend-protocol-version HTTP2), with every per-call rule taken from
// internal/call.
package rest

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Handler serves the REST calls of one listener port. Immutable; safe for concurrent use.
type Handler struct {
	Port       *call.Port
	Transports *Transports
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var c call.Call
	c.Begin(h.Port, r.URL.Path, false, time.Now())
	c.Rec.Client = r.RemoteAddr
	if r.TLS != nil {
		c.Rec.TLSVersion = r.TLS.Version
	}
	fields := headerFields(r.Header)
	c.Metadata(fields)
	if f := h.serve(w, r, &c, fields); f != nil {
		c.Answer(f)
		writeError(w, f)
	}
	c.Finish(time.Now(), "")
}

// serve routes and forwards; it returns a failure only when nothing was written yet.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, c *call.Call, fields []hpack.HeaderField) *call.Failure {
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		src = ap.Addr()
	}
	// REST calls are not MilvusService calls: the decision never waits for the body.
	d := c.Route(&call.Request{Authority: r.Host, SNI: sni, Request: router.Request{Path: r.URL.Path,
		Query: r.URL.RawQuery, Method: r.Method, Headers: fields, Source: src}})
	e := d.Entry
	if fx := fixedOf(d); fx != nil {
		writeFixed(w, fx)
		c.Rec.Status = fx.StatusCode
		return nil
	}
	if d.Fail != nil {
		return d.Fail
	}
	if port := e.Route.SSLRedirect; port != 0 && !h.Port.TLS {
		target := "https://" + router.HostOnly(r.Host)
		if port != 443 {
			target += ":" + strconv.Itoa(port)
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
		c.Rec.Status = http.StatusMovedPermanently
		return nil
	}
	reqBody, f := limitBody(h.Port.Limits, r.Body, r.ContentLength)
	if f != nil {
		return f
	}
	body := &replayGuard{ReadCloser: reqBody, call: c, want: true}
	defer func() { c.Moved(body.n.Load(), 0) }()
	for {
		if _, f := c.Pick(); f != nil {
			return f
		}
		err := h.forward(r.Context(), w, r, body, c, fields)
		if err == nil {
			return nil
		}
		if f := body.limitFailure(); f != nil {
			return f
		}
		retry, f := c.Failed(r.Context(), err, call.StageOf(err), !body.read)
		if !retry {
			return f
		}
	}
}

// useH2 reports whether a REST call goes to the backend over HTTP/2: only when its
// Ingress says so. Milvus serves REST on its gRPC port only to HTTP/1.1.
func useH2(b *config.Backend) bool { return b.Protocol == config.BackendHTTP2 }

func writeError(w http.ResponseWriter, f *call.Failure) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.HTTPStatus())
	_, _ = w.Write([]byte("milvus-lb: " + f.Msg + "\n"))
}

// fixedOf is the fixed response a REST call is answered with, as the route has it.
func fixedOf(d call.Decision) *config.FixedResponse {
	if d.Fail == nil || d.Entry == nil {
		return nil
	}
	return d.Entry.Route.Fixed
}

// writeFixed writes a route's fixed response as the ALB does: its status, content type
// (text/plain by default) and body.
func writeFixed(w http.ResponseWriter, fx *config.FixedResponse) {
	ct := fx.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(fx.StatusCode)
	_, _ = w.Write([]byte(fx.MessageBody))
}
