package call

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
)

// Failure is an answer the balancer itself gives a call. It is the one place where causes
// become what a client sees: gRPC clients get Code and Msg in a Trailers-Only response or
// in trailers; REST clients get the matching HTTP status and Msg. Cause is for logs only.
type Failure struct {
	Code  codes.Code
	Msg   string
	Cause error
	// Warn: the operator must hear of it (a misconfiguration, not a passing fault), so
	// it is logged as a warning rather than at debug level.
	Warn bool
}

func (f *Failure) Error() string {
	if f.Cause != nil {
		return f.Msg + ": " + f.Cause.Error()
	}
	return f.Msg
}

func (f *Failure) Unwrap() error { return f.Cause }

// GRPCMessage is the grpc-message value of f: the balancer's name first, so that a user
// can tell the balancer's answers from Milvus's, percent-encoded as the gRPC spec requires
// (bytes outside printable ASCII, and '%').
func (f *Failure) GRPCMessage() string {
	s := "milvus-lb: " + f.Msg
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			return url.PathEscape(s)
		}
	}
	return s
}

// GRPCStatus is f.Code as the grpc-status value.
func (f *Failure) GRPCStatus() string { return strconv.Itoa(int(f.Code)) }

// HTTPStatus maps f.Code to the status a REST client gets, after the gRPC-HTTP mapping in
// grpc/doc/statuscodes.md read backwards.
func (f *Failure) HTTPStatus() int {
	switch f.Code {
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

// The failures the balancer answers with, each built here and nowhere else.

// ShuttingDown answers a call that arrived on a port the configuration no longer has.
func ShuttingDown() *Failure {
	return &Failure{Code: codes.Unavailable, Msg: "listener is shutting down"}
}

// NoRule answers a call whose host and path match no rule.
func NoRule(host, path string) *Failure {
	return &Failure{Code: codes.Unimplemented, Msg: "no rule matches host " + strconv.Quote(host) + " path " + strconv.Quote(path)}
}

// NoEndpoint answers a call whose backend has no endpoint to take it.
func NoEndpoint(service string) *Failure {
	return &Failure{Code: codes.Unavailable, Msg: "no healthy endpoint for Service " + service}
}

// DeadlineExceeded answers a call whose grpc-timeout passed before the backend finished.
func DeadlineExceeded(service string) *Failure {
	return &Failure{Code: codes.DeadlineExceeded, Msg: "deadline exceeded waiting for " + service}
}

// BackendReset answers a call whose backend stream was reset before a reply.
func BackendReset(service, code string) *Failure {
	return &Failure{Code: codes.Unavailable, Msg: "backend " + service + " reset the stream: " + code}
}

// BackendUnavailable answers a call whose every attempt met a backend that said it is
// not serving (grpc-status UNAVAILABLE before a reply).
func BackendUnavailable(service string) *Failure {
	return &Failure{Code: codes.Unavailable, Msg: "backend " + service + " is not serving", Cause: ErrBackendUnavailable}
}

// BackendGone answers a call whose backend connection ended under it.
func BackendGone(service string, cause error) *Failure {
	return &Failure{Code: codes.Unavailable, Msg: "backend " + service + " is unavailable", Cause: cause}
}

// HeadersTooLarge answers a call whose header list is over the listener's limit.
func HeadersTooLarge() *Failure {
	return &Failure{Code: codes.ResourceExhausted, Msg: "request headers too large"}
}

// TooLarge answers a message over its limit: RESOURCE_EXHAUSTED, the code grpc-go itself
// uses for "received message larger than max" (and, for REST, 413).
func TooLarge(what string, max int64) *Failure {
	return &Failure{Code: codes.ResourceExhausted, Msg: what + " message larger than " + formatBytes(max)}
}

// Classify turns an error of a backend round trip into a Failure. ctx is the call's: its
// deadline or cancellation, if either is the cause, decides the code.
func Classify(ctx context.Context, err error, service string) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return &Failure{Code: codes.DeadlineExceeded, Msg: "deadline exceeded waiting for " + service, Cause: err}
	case errors.Is(ctx.Err(), context.Canceled):
		return &Failure{Code: codes.Canceled, Msg: "request canceled by the client", Cause: err}
	case notHTTP1(err):
		// A gRPC-only server (milvus-lite; a Milvus proxy behind a port that is not the
		// one serving REST) greets with HTTP/2 frames, which HTTP/1.1 reads as garbage.
		return &Failure{Code: codes.Unknown, Msg: "backend " + service + " answered with something that is not HTTP/1.1 (does it serve Milvus REST on this port?)", Cause: err, Warn: true}
	case isRefused(err):
		return &Failure{Code: codes.Unavailable, Msg: "backend " + service + " refused the connection", Cause: err}
	default:
		return &Failure{Code: codes.Unavailable, Msg: "backend " + service + " is unavailable", Cause: err}
	}
}

// NotReceived reports whether err happened before any byte of the call could reach the
// backend (the connection was never made), so the call may go to another endpoint
// whatever it is.
func NotReceived(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// StageOf is the stage at which a round trip that returned err (with no reply) failed:
// NotSent when the connection was never made, else BeforeReply.
func StageOf(err error) Stage {
	if NotReceived(err) {
		return NotSent
	}
	return BeforeReply
}

// notHTTP1 recognizes net/http's error for a reply that is not HTTP/1.1 at all.
func notHTTP1(err error) bool {
	return strings.Contains(err.Error(), "malformed HTTP response")
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || NotReceived(err)
}

// formatBytes writes n in the largest binary unit that divides it exactly, as the flags
// take it ("256MiB"), else in bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
