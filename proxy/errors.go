package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ErrorType says what went wrong.
type ErrorType uint8

// Error types.
const (
	// InternalError is a bug or a panic in the framework or in a phase.
	InternalError ErrorType = iota
	// PeerSelectionError: UpstreamPeer returned an error or no peer.
	PeerSelectionError
	// ConnectRefused: the peer refused the connection.
	ConnectRefused
	// ConnectTimeout: connecting to the peer took longer than its connect timeout.
	ConnectTimeout
	// ConnectError: connecting to the peer failed otherwise.
	ConnectError
	// ReadTimeout: a read from the peer or the client timed out.
	ReadTimeout
	// WriteTimeout: a write to the peer or the client timed out.
	WriteTimeout
	// TotalTimeout: the attempt ran out of the peer's PeerOptions.TotalTimeout.
	TotalTimeout
	// ReadError: reading from the peer or the client failed.
	ReadError
	// WriteError: writing to the peer or the client failed.
	WriteError
	// ConnectionClosed: the other side closed the connection early.
	ConnectionClosed
	// InvalidHTTP: the peer or the client sent a malformed message.
	InvalidHTTP
	// HTTPStatus: a phase asked to end the request with a given status.
	HTTPStatus
)

var errorTypeNames = [...]string{
	InternalError:      "internal error",
	PeerSelectionError: "peer selection error",
	ConnectRefused:     "connection refused",
	ConnectTimeout:     "connect timeout",
	ConnectError:       "connect error",
	ReadTimeout:        "read timeout",
	WriteTimeout:       "write timeout",
	TotalTimeout:       "total timeout",
	ReadError:          "read error",
	WriteError:         "write error",
	ConnectionClosed:   "connection closed",
	InvalidHTTP:        "invalid HTTP",
	HTTPStatus:         "HTTP status",
}

// String returns a short description of t.
func (t ErrorType) String() string {
	if int(t) < len(errorTypeNames) {
		return errorTypeNames[t]
	}
	return fmt.Sprintf("error type %d", t)
}

// ErrorSource says which side an error came from.
type ErrorSource uint8

// Error sources.
const (
	// Internal errors come from the framework or a phase.
	Internal ErrorSource = iota
	// Upstream errors come from the peer or the connection to it.
	Upstream
	// Downstream errors come from the client or the connection to it.
	Downstream
)

// String returns "internal", "upstream" or "downstream".
func (s ErrorSource) String() string {
	switch s {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return "internal"
}

// Error is the error type of the proxy. Use [errors.As] to get one from an error chain.
// Timeouts satisfy [net.Error] with Timeout() true.
type Error struct {
	// Type says what went wrong.
	Type ErrorType
	// Source says which side it came from.
	Source ErrorSource
	// Retry asks for another attempt with a new UpstreamPeer call (see
	// ProxyHTTP.FailToConnect and ProxyHTTP.ErrorWhileProxy).
	Retry bool
	// Status, if not zero, is the status to answer the client with instead of the
	// default for Type.
	Status int
	// Cause is the underlying error, if any.
	Cause error

	connectFailure bool // set by the proxy between connecting and FailToConnect
}

// NewError returns an *Error of the given type and source wrapping cause.
func NewError(t ErrorType, src ErrorSource, cause error) *Error {
	return &Error{Type: t, Source: src, Cause: cause}
}

// StatusError returns an error that ends a request with status: return it from a phase
// to answer the client with that status and a plain error page.
func StatusError(status int) *Error {
	return &Error{Type: HTTPStatus, Source: Internal, Status: status}
}

// Error describes e. It includes the cause's text, for logs; error pages never show it.
func (e *Error) Error() string {
	s := e.Source.String() + " " + e.Type.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Timeout reports whether e is a timeout.
func (e *Error) Timeout() bool {
	switch e.Type {
	case ConnectTimeout, ReadTimeout, WriteTimeout, TotalTimeout:
		return true
	}
	return false
}

// Temporary is false; it exists so that *Error satisfies [net.Error].
func (e *Error) Temporary() bool { return false }

var _ net.Error = (*Error)(nil)

// ErrShutdown is the cause of the error of a request that the service cut short as it
// closed: [Service.Close], or [Service.Shutdown] when its context ended before the request
// did. Test for it with errors.Is. The error is an *[Error] of type ConnectionClosed from
// the Internal source that also wraps [context.Canceled] (the service's context was
// cancelled; lb.OutcomeOf counts it as Canceled): the peer is not to blame, so the
// request goes to neither
// FailToConnect nor ErrorWhileProxy, is not retried, and gets no answer (its client
// connection is being closed; FailToProxy does not run). Logging runs as for any request.
var ErrShutdown = errors.New("proxy: service closed")

// shutdownError is the error of a request cut short by the service's closing; cause is
// the failure that the closing caused, if any.
func shutdownError(cause error) *Error {
	err := fmt.Errorf("%w: %w", ErrShutdown, context.Canceled)
	if cause != nil {
		err = fmt.Errorf("%w: %w: %w", ErrShutdown, context.Canceled, cause)
	}
	return &Error{Type: ConnectionClosed, Source: Internal, Cause: err}
}

// StatusClientClosedRequest (499, nginx's "client closed request") is the status a
// request that the client abandoned before its response started is logged with: an
// HTTP/2 stream the client reset, or whose connection ended, while the peer was still
// being asked. Nothing is sent; the client is gone.
const StatusClientClosedRequest = 499

// ErrorStatus maps an error to the status the client gets for it: a set Status first;
// then by type: upstream timeouts 504, other upstream failures 502, malformed or broken
// client requests 400, client timeouts 408, anything else (and errors that are not
// *Error) 500.
func ErrorStatus(err error) int {
	var e *Error
	if !errors.As(err, &e) {
		return 500
	}
	if e.Status != 0 {
		return e.Status
	}
	switch e.Source {
	case Upstream:
		if e.Timeout() {
			return 504
		}
		return 502
	case Downstream:
		if e.Timeout() {
			return 408
		}
		return 400
	}
	if e.Type == PeerSelectionError {
		return 502
	}
	return 500
}

// asError converts err to an *Error, wrapping it as t/src when it is not one.
func asError(err error, t ErrorType, src ErrorSource) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		switch t {
		case ReadError:
			t = ReadTimeout
		case WriteError:
			t = WriteTimeout
		case ConnectError:
			t = ConnectTimeout
		}
	}
	return &Error{Type: t, Source: src, Cause: err}
}
