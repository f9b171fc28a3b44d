package l4

import (
	"context"
	"net"
)

// ProxyTCP is the callback interface a user implements to make a TCP (or TLS) proxy. C
// is the type of the per-connection context that [ProxyTCP.NewCtx] makes and every
// phase receives.
//
// Only NewCtx and UpstreamPeer must be written; every other phase has a default in
// [Phases], which the implementing type must embed. The phases run in the order of the
// chart in the package documentation. A ProxyTCP is shared by every connection of a
// service, so its methods must be safe for concurrent use; per-connection state belongs
// in C. The phases of one connection run one at a time, on the connection's goroutine.
//
// Every phase receives the service's context (canceled when the service is closed), the
// connection's [Session] and the per-connection context c. A panic in a phase ends that
// connection only: it is recovered, logged with its stack, and Logging runs with an
// error wrapping [ErrPanic].
type ProxyTCP[C any] interface {
	// NewCtx returns the per-connection context for a new connection. It runs first,
	// once per connection.
	NewCtx() C

	// ConnectionFilter runs once a connection is accepted, before anything is read from
	// it (before the TLS handshake on an endpoint added with AddTLS): s has the client
	// and local addresses. Returning an error closes the connection at once; Logging
	// then gets an error wrapping [ErrRejected] and the phase's error. Default: accept.
	ConnectionFilter(ctx context.Context, s *Session, c C) error

	// UpstreamPeer returns the peer to connect the client to. It runs after
	// ConnectionFilter (and after the TLS handshake when the service terminates TLS, so
	// s.TLS and s.ServerName are known), and again for each retry. The returned Peer may
	// be shared between connections; the framework never changes it. Returning an error
	// ends the connection. A Peer that fails [Peer.Validate] ends it without a retry.
	UpstreamPeer(ctx context.Context, s *Session, c C) (*Peer, error)

	// FailToConnect runs when connecting to peer failed (the dial, or the TLS handshake
	// when the peer has TLS). It returns the error to go on with; setting its Retry field
	// asks for another attempt (UpstreamPeer runs again) within
	// [ServiceOptions.MaxRetries]. Nothing was sent upstream yet, so a retry is always
	// safe; err arrives with Retry false. It does not run when the service's closing cut
	// the attempt. Default: err unchanged (no retry).
	FailToConnect(ctx context.Context, s *Session, c C, peer *Peer, err *ConnectError) *ConnectError

	// Connected runs once the connection to peer is up, before any byte is copied. up is
	// the upstream connection (a *tls.Conn when the peer has TLS): the phase may write a
	// preamble to it, which is not counted in the session's bytes, but must not read from
	// it or close it, nor keep it past the phase: while the connection idles, the
	// service may replace its sockets (see "Idle connections hold no goroutine" in the
	// package documentation). Returning an error ends the connection. Default: nothing.
	Connected(ctx context.Context, s *Session, c C, peer *Peer, up net.Conn) error

	// Logging runs once at the end of every connection, whatever happened, after both
	// connections were closed; err is the error that ended it, or nil when both sides
	// closed their direction. s has the bytes copied each way, the peer and the
	// duration. A connection cut by the service's closing ends with an error wrapping
	// [ErrShutdown]; one cut by a timeout with [ErrIdleTimeout] or [ErrTotalTimeout].
	// Default: nothing.
	Logging(ctx context.Context, s *Session, c C, err error)

	phases()
}

// Phases provides the default for every optional phase of [ProxyTCP]. Embed it in the
// type that implements ProxyTCP; its zero value is ready to use.
type Phases[C any] struct{}

func (Phases[C]) phases() {}

// ConnectionFilter accepts every connection.
func (Phases[C]) ConnectionFilter(context.Context, *Session, C) error { return nil }

// FailToConnect returns err unchanged: no retry.
func (Phases[C]) FailToConnect(_ context.Context, _ *Session, _ C, _ *Peer, err *ConnectError) *ConnectError {
	return err
}

// Connected does nothing.
func (Phases[C]) Connected(context.Context, *Session, C, *Peer, net.Conn) error { return nil }

// Logging does nothing.
func (Phases[C]) Logging(context.Context, *Session, C, error) {}
