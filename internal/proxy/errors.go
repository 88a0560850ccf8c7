package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"google.golang.org/grpc/codes"
)

// failure is an error the balancer itself answers with. It is the one place where causes
// become client-visible statuses: gRPC clients get a code and a short message in a
// Trailers-Only response; HTTP clients get the matching HTTP status. The cause is for logs.
type failure struct {
	code  codes.Code
	msg   string
	cause error
}

func (f *failure) Error() string {
	if f.cause != nil {
		return f.msg + ": " + f.cause.Error()
	}
	return f.msg
}

func (f *failure) Unwrap() error { return f.cause }

// httpStatus maps a gRPC code to the status a REST client gets, after the gRPC-HTTP
// mapping in grpc/doc/statuscodes.md read backwards.
func (f *failure) httpStatus() int {
	switch f.code {
	case codes.Unimplemented, codes.NotFound:
		return http.StatusNotFound
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.ResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Canceled:
		return 499 // client closed request, as nginx logs it
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadGateway
	}
}

// classify turns an error from the backend round trip into a failure. backend names the
// Service for the message.
func classify(ctx context.Context, err error, backend string) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return &failure{codes.DeadlineExceeded, "deadline exceeded waiting for " + backend, err}
	case errors.Is(ctx.Err(), context.Canceled):
		return &failure{codes.Canceled, "request canceled by the client", err}
	case isRefused(err):
		return &failure{codes.Unavailable, "backend " + backend + " refused the connection", err}
	default:
		return &failure{codes.Unavailable, "backend " + backend + " is unavailable", err}
	}
}

// isDialError reports whether err happened before any request byte could reach the
// backend, so the request may safely go to another endpoint.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || isDialError(err)
}

// writeGRPCError answers a gRPC request with a Trailers-Only response: HTTP 200 and the
// status in the only HEADERS frame, which ends the stream (gRPC over HTTP/2 spec,
// "Responses"). Nothing may have been written to w before.
func writeGRPCError(w http.ResponseWriter, f *failure) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(f.code)))
	h.Set("Grpc-Message", encodeGRPCMessage("milvus-lb: "+f.msg))
	w.WriteHeader(http.StatusOK)
}

// setGRPCErrorTrailer ends a response whose headers were already sent with an error
// status in the trailers.
func setGRPCErrorTrailer(w http.ResponseWriter, f *failure) {
	h := w.Header()
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(f.code)))
	h.Set(http.TrailerPrefix+"Grpc-Message", encodeGRPCMessage("milvus-lb: "+f.msg))
}

func writeHTTPError(w http.ResponseWriter, f *failure) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.httpStatus())
	_, _ = w.Write([]byte("milvus-lb: " + f.msg + "\n"))
}

// encodeGRPCMessage percent-encodes a grpc-message value as the gRPC spec requires
// (bytes outside printable ASCII, and '%').
func encodeGRPCMessage(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			return url.PathEscape(s)
		}
	}
	return s
}
