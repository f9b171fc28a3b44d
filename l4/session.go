package l4

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"
)

// Session describes one client connection through the service: who connected, what its
// TLS said, the peer chosen, and the bytes copied. Every phase of the connection gets the
// same *Session. Its methods are safe for concurrent use (the byte counts are atomics,
// updated while the copy runs).
type Session struct {
	client, local net.Addr
	start         time.Time
	end           time.Time
	tls           *tls.ConnectionState
	serverName    string
	alpn          []string
	peer          *Peer
	attempts      int
	toUpstream    atomic.Int64
	toClient      atomic.Int64
}

// ClientAddr returns the client's address (the connection's remote address).
func (s *Session) ClientAddr() net.Addr { return s.client }

// LocalAddr returns the address the client connected to.
func (s *Session) LocalAddr() net.Addr { return s.local }

// TLS returns the state of the client connection's TLS when the service terminates it
// (an endpoint added with AddTLS), or nil. It is set after ConnectionFilter, before
// UpstreamPeer. Do not change it.
func (s *Session) TLS() *tls.ConnectionState { return s.tls }

// ServerName returns the server name the client asked for (TLS SNI), in lower case,
// when known: from the handshake on an endpoint that terminates TLS, from the
// ClientHello on a passthrough endpoint (before UpstreamPeer in both); otherwise "".
func (s *Session) ServerName() string { return s.serverName }

// ALPN returns the application protocols known for the connection: on a passthrough
// endpoint, the list the client offered, in its order; on an endpoint that terminates
// TLS, the one negotiated (none if the client offered none the service accepts). Do
// not change the slice.
func (s *Session) ALPN() []string { return s.alpn }

// Start returns the time the connection was accepted.
func (s *Session) Start() time.Time { return s.start }

// Duration returns how long the connection lasted: up to now while it runs, and up to
// its end in Logging.
func (s *Session) Duration() time.Duration {
	if s.end.IsZero() {
		return time.Since(s.start)
	}
	return s.end.Sub(s.start)
}

// Peer returns the peer of the current (or last) connection attempt, or nil before
// UpstreamPeer returned one.
func (s *Session) Peer() *Peer { return s.peer }

// Attempts returns the number of connection attempts made so far (retries included).
func (s *Session) Attempts() int { return s.attempts }

// BytesToUpstream returns the bytes copied from the client to the peer so far.
func (s *Session) BytesToUpstream() int64 { return s.toUpstream.Load() }

// BytesToClient returns the bytes copied from the peer to the client so far.
func (s *Session) BytesToClient() int64 { return s.toClient.Load() }
