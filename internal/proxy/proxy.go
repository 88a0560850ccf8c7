// Package proxy is the data path: for each request it loads the current snapshot once,
// routes by host and path, picks an endpoint, forwards the request as a stream, and copies
// the response, its trailers and its errors back. gRPC calls are balanced per call, not
// per connection: one client connection's calls spread over every ready endpoint.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/milvus-lb/milvus-lb/internal/call"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
	"github.com/milvus-lb/milvus-lb/internal/router"
)

// Handler serves one listener port. It is immutable and safe for concurrent use.
type Handler struct {
	Port       int
	TLS        bool // the listener terminates TLS
	Snapshot   func() *gateway.Snapshot
	Transports *Transports
	Observer   call.Observer // may be nil
	Log        *slog.Logger
	Limits     Limits // the zero value limits nothing; see DefaultLimits
}

// maxAttempts bounds how many endpoints one request may try when connections are refused.
const maxAttempts = 3

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	isGRPC := r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
	rec := call.Record{GRPC: isGRPC, Method: "http"}
	if isGRPC {
		rec.Method = "grpc"
		if m := milvus.Lookup(r.URL.Path); m != nil {
			rec.Method = m.Name
		}
	}
	res := h.serve(w, r, isGRPC, &rec)
	if res != nil {
		h.fail(w, r, isGRPC, res, &rec)
	}
	if h.Observer != nil {
		rec.Duration = time.Since(start)
		h.Observer.Observe(&rec)
	}
}

// serve routes and forwards; it returns a failure only when nothing was written yet.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, isGRPC bool, rec *call.Record) *failure {
	snap := h.Snapshot()
	l := snap.Listeners[h.Port]
	if l == nil {
		return &failure{code: codes.Unavailable, msg: "listener is shutting down"}
	}
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	e, f := match(l, r.Host, sni, r.URL.Path)
	if f != nil {
		return f
	}
	if port := e.Route.SSLRedirect; port != 0 && !h.TLS && !isGRPC {
		target := "https://" + hostOnly(r.Host)
		if port != 443 {
			target += ":" + strconv.Itoa(port)
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
		rec.Status = http.StatusMovedPermanently
		return nil
	}
	be := e.Target
	rec.Backend = be.Key

	ctx := r.Context()
	if isGRPC {
		if d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok {
			// Enforce the deadline here too, so a hung backend is answered with
			// DEADLINE_EXCEEDED rather than holding the call forever.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	reqBody, tooLarge := h.Limits.limitRequest(r.Body, r.ContentLength, isGRPC)
	if tooLarge != nil {
		return tooLarge
	}
	body := &replayGuard{ReadCloser: reqBody}
	for attempt := 0; ; attempt++ {
		ep := be.Picker.Pick()
		if ep == nil {
			return &failure{code: codes.Unavailable, msg: "no healthy endpoint for Service " + be.Service + ":" + be.Port}
		}
		rec.Attempts++
		rec.Endpoint = ep.Addr
		err := h.forward(ctx, w, r, body, be, ep, isGRPC, rec)
		if err == nil {
			return nil
		}
		if f := limitFailure(body); f != nil {
			return f
		}
		f := classify(ctx, err, be.Service+":"+be.Port)
		if f.code == codes.Unavailable && isDialError(err) {
			// The endpoint refused before any byte was sent: take it out for a moment
			// (passive outlier detection) and, if the body is untouched, try another.
			ep.Eject(5 * time.Second)
			h.Log.Warn("backend endpoint refused connection; ejected", "backend", be.Key, "endpoint", ep.Addr, "error", err)
			if !body.read && attempt+1 < maxAttempts && len(be.Endpoints) > 1 {
				continue
			}
		}
		if f.code != codes.Canceled {
			h.Log.Debug("request failed", "backend", be.Key, "endpoint", ep.Addr, "path", r.URL.Path, "error", err)
		}
		return f
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, isGRPC bool, f *failure, rec *call.Record) {
	if isGRPC {
		rec.Code = f.code
		writeGRPCError(w, f)
		return
	}
	rec.Status = f.httpStatus()
	writeHTTPError(w, f)
}

// useH2 decides the protocol to the backend. gRPC always goes over HTTP/2: it cannot work
// over HTTP/1.1, whatever backend-protocol-version says. REST goes over HTTP/1.1 to a GRPC
// backend, because Milvus serves REST on its gRPC port only to HTTP/1.1 (cmux sends every
// HTTP/2 connection to the gRPC server).
func useH2(b *config.Backend, isGRPC bool) bool {
	return isGRPC || b.Protocol == config.BackendHTTP2
}

// match finds the rule for a request. Rules match the :authority (Host), as on the ALB.
// One exception: on a TLS connection whose :authority is an IP address, or names no rule,
// the TLS server name (SNI) is tried too. A client that dials an address and sets only
// the server name sends that: grpc-js, and so the Milvus Node SDK, maps its serverName
// option to grpc.ssl_target_name_override, which changes SNI but not :authority.
func match(l *gateway.Listener, authority, sni, path string) (*router.Entry[*gateway.Backend], *failure) {
	host := hostOnly(authority)
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
	return nil, noRule(host, path)
}

func noRule(host, path string) *failure {
	return &failure{code: codes.Unimplemented, msg: "no rule matches host " + strconv.Quote(host) + " path " + strconv.Quote(path)}
}

// hostOnly is the host of an :authority or Host value, without its port: what
// net.SplitHostPort returns for host:port and [v6]:port, h itself otherwise (without the
// error SplitHostPort allocates for the common name without a port).
func hostOnly(h string) string {
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

// parseGRPCTimeout reads a grpc-timeout header: up to 8 digits and a unit
// (H, M, S, m, u, n), per the gRPC over HTTP/2 spec.
func parseGRPCTimeout(v string) (time.Duration, bool) {
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
