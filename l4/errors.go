package l4

import (
	"errors"
	"fmt"
)

// Errors that end a connection, as Logging sees them (wrapped: test with errors.Is).
var (
	// ErrRejected wraps the error of a ConnectionFilter that refused the connection.
	ErrRejected = errors.New("l4: connection rejected")
	// ErrIdleTimeout ends a connection on which no byte moved either way for the
	// service's IdleTimeout.
	ErrIdleTimeout = errors.New("l4: idle timeout")
	// ErrTotalTimeout ends a connection that lasted the service's TotalTimeout.
	ErrTotalTimeout = errors.New("l4: total timeout")
	// ErrShutdown ends a connection cut by the service's Close (or by a Shutdown whose
	// context ended, or by CloseStreams).
	ErrShutdown = errors.New("l4: service closing")
	// ErrHandshake wraps the error of a failed TLS handshake with the client.
	ErrHandshake = errors.New("l4: client TLS handshake failed")
	// ErrNotTLSHello wraps the failure to read a TLS ClientHello on an endpoint added
	// with AddTLSPassthrough: bytes that are not TLS, a malformed or oversized hello, a
	// client that closed or was too slow (a timeout).
	ErrNotTLSHello = errors.New("l4: no TLS ClientHello")
	// ErrPanic wraps a panic recovered from a phase.
	ErrPanic = errors.New("l4: panic in a phase")
)

// ConnectError is a failure to connect to a peer: the dial, or the TLS handshake with a
// peer that has TLS. [ProxyTCP.FailToConnect] receives it and may set Retry.
type ConnectError struct {
	// Peer is the peer the attempt was for.
	Peer *Peer
	// Retry asks for another attempt: UpstreamPeer runs again. It arrives false.
	Retry bool
	// Err is the cause: a *net.OpError from the dial, a TLS error, or a timeout
	// (os.ErrDeadlineExceeded or context.DeadlineExceeded wrapped).
	Err error
}

// Error describes the failure with the peer's address.
func (e *ConnectError) Error() string {
	addr := ""
	if e.Peer != nil {
		addr = e.Peer.Address
	}
	return fmt.Sprintf("l4: connect to %s: %v", addr, e.Err)
}

// Unwrap returns Err.
func (e *ConnectError) Unwrap() error { return e.Err }
