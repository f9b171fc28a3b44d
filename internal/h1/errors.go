package h1

import (
	"errors"
	"strconv"
)

// ErrIncomplete is returned by [ParseRequestHead] and [ParseResponseHead] when the
// buffer does not yet hold a complete head.
var ErrIncomplete = errors.New("h1: incomplete head")

// ErrBodyPending is returned by [Reader.ReadRequestHead] and [Reader.ReadResponseHead]
// when the body of the previous message has not been read to its end. Reading the next
// head from the middle of a body would treat body bytes as a head, so the caller must
// drain the body (or close the connection) first.
var ErrBodyPending = errors.New("h1: previous message body not read to its end")

var (
	// ErrBodyTooLong is returned by [Writer.WriteBody] when a Content-Length delimited
	// body would exceed its declared length (or a body is written where none may be).
	ErrBodyTooLong = errors.New("h1: body longer than declared Content-Length")
	// ErrBodyTooShort is returned by [Writer.FinishBody] when fewer bytes than the
	// declared Content-Length were written.
	ErrBodyTooShort = errors.New("h1: body shorter than declared Content-Length")
)

// errInvalidStatus is the sticky error of a [Writer] asked to write a status code that
// does not have three digits.
var errInvalidStatus = errors.New("h1: invalid status code")

// Error is a parse or framing error.
//
// Status is the HTTP status the proxy should answer a client with for a request error
// (400, 414, 431, 501 or 505); for errors in a response from an upstream it is 502.
// Reason is a constant short text that never contains input bytes, so it is safe to log
// and to send. Offset is the byte offset in the parsed input (the head, or for body
// errors the current buffer position) where the error was detected.
type Error struct {
	Status int
	Reason string
	Offset int
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "h1: " + e.Reason + " (status " + strconv.Itoa(e.Status) + ", offset " + strconv.Itoa(e.Offset) + ")"
}

// Status codes carried by [Error].
const (
	statusBadRequest          = 400
	statusURITooLong          = 414
	statusFieldsTooLarge      = 431
	statusNotImplemented      = 501
	statusBadGateway          = 502
	statusVersionNotSupported = 505
)

// side tells whether a message came from a client (request) or an upstream
// (response); it decides the status of an [Error].
type side bool

const (
	sideRequest  side = false
	sideResponse side = true
)

// errAt builds an *Error. For responses every status becomes 502: a malformed upstream
// response is a gateway error whatever the rule it broke.
// reasonBadVersion is the Reason of a request line whose version is bad;
// reasonNotHTTP of one whose last part is not a version at all.
const (
	reasonBadVersion = "invalid HTTP version"
	reasonNotHTTP    = "not an HTTP/1.x request line"
)

// NotHTTP reports whether the request line did not end in anything like an HTTP
// version ("INVALID CONNECTION PREFACE", say: no "/" in its last part): the bytes are
// likely not HTTP/1.x, such as an invalid HTTP/2 preface, and an HTTP/1.1 answer would
// mean nothing to the sender. A mistyped or unsupported version ("HTTX/1.1",
// "HTTP/2.0") is not such a case: it gets 400 or 505.
func (e *Error) NotHTTP() bool { return e.Status == statusBadRequest && e.Reason == reasonNotHTTP }

func errAt(s side, status int, reason string, off int) *Error {
	if s == sideResponse {
		status = statusBadGateway
	}
	return &Error{Status: status, Reason: reason, Offset: off}
}
