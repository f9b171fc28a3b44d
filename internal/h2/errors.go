package h2

import (
	"errors"
	"strconv"

	"golang.org/x/net/http2"
)

var (
	// ErrConnClosed is returned by the methods of a [Stream] whose connection has ended.
	ErrConnClosed = errors.New("h2: connection closed")

	// ErrStreamDone is returned by a write on a [Stream] whose response has ended.
	ErrStreamDone = errors.New("h2: response already ended")

	// ErrWriteTimeout is returned by [Stream.WriteData] when the client kept its
	// flow-control window closed for longer than [Options.WriteTimeout]; the stream has
	// been reset. It satisfies net.Error with Timeout() true.
	ErrWriteTimeout error = timeoutError("h2: stream write timed out")

	// ErrInvalidResponse is returned (wrapped) by [Stream.WriteHeaders] and
	// [Stream.WriteTrailers] for a status or field HTTP/2 cannot carry: a status
	// outside 100-999 or 101, an invalid or uppercase field name, a value with CR, LF
	// or NUL, a connection-specific field (RFC 9113 §8.2.2), or a call out of order.
	ErrInvalidResponse = errors.New("h2: invalid response")
)

// timeoutError is an error that reports itself as a timeout, as net.Error asks.
type timeoutError string

func (e timeoutError) Error() string   { return string(e) }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// ResetError is returned by the methods of a [Stream] that was reset, and by a
// [ClientConn]'s streams. Remote tells whether the other side sent the RST_STREAM (the
// client, for a server's stream; the server, for a client's); otherwise we did (a
// protocol error in the other side's frames, a write timeout, or [Stream.Reset]).
type ResetError struct {
	Code   http2.ErrCode
	Remote bool
}

// Error implements the error interface.
func (e *ResetError) Error() string {
	if e.Remote {
		return "h2: stream reset by peer: " + e.Code.String()
	}
	return "h2: stream reset: " + e.Code.String()
}

// ConnError is a connection error (RFC 9113 §5.4.1): the client broke the protocol or a
// limit, and the connection was closed with a GOAWAY carrying Code. [Conn.Serve]
// returns it. Reason is a constant text that never contains input bytes.
type ConnError struct {
	Code   http2.ErrCode
	Reason string
}

// Error implements the error interface.
func (e *ConnError) Error() string {
	return "h2: connection error " + e.Code.String() + ": " + e.Reason
}

// streamError is a stream error (RFC 9113 §5.4.2) found by the read loop: the stream is
// reset with code, the connection continues.
type streamError struct {
	id     uint32
	code   http2.ErrCode
	reason string
}

func (e *streamError) Error() string {
	return "h2: stream " + strconv.FormatUint(uint64(e.id), 10) + " error " + e.code.String() + ": " + e.reason
}

func connErr(code http2.ErrCode, reason string) error { return &ConnError{Code: code, Reason: reason} }

func streamErr(id uint32, code http2.ErrCode, reason string) error {
	return &streamError{id: id, code: code, reason: reason}
}
