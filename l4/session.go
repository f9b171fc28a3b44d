package l4

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Session describes one client connection through the service: who connected, what its
// TLS said, the peer chosen, and the bytes copied. Every phase of the connection gets the
// same *Session. Its methods are safe for concurrent use (the byte counts are atomics,
// updated while the copy runs).
//
// A Session lives as long as its connection, idle ones included, so it is kept small:
// TCP addresses are held as netip.AddrPort values (ClientAddr and LocalAddr make a
// *net.TCPAddr of them on each call), and what only TLS connections have sits behind
// one pointer.
type Session struct {
	// client and local are the TCP addresses; others, the addresses that are not
	// (a Unix socket's, say), when there are any.
	client, local netip.AddrPort
	others        *[2]net.Addr
	start         time.Time
	dur           time.Duration // set at the end, before Logging; 0 until then
	tls           *tlsInfo      // nil: no TLS seen
	peer          *Peer
	attempts      int
	bytes         [2]atomic.Int64 // copied to the peer, to the client
}

// tlsInfo is what a Session knows of its client's TLS.
type tlsInfo struct {
	state      *tls.ConnectionState // terminated here
	serverName string
	alpn       []string
}

// setAddrs records the client's and the local address: TCP ones as their IP and port
// (which hold no memory of their own), others as they came.
func (s *Session) setAddrs(client, local net.Addr) {
	c, cok := tcpAddrPort(client)
	l, lok := tcpAddrPort(local)
	if cok && lok {
		s.client, s.local = c, l
		return
	}
	s.others = &[2]net.Addr{client, local}
}

// tcpAddrPort returns a's IP and port if it is a TCP address.
func tcpAddrPort(a net.Addr) (netip.AddrPort, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	return ap, ap.IsValid()
}

// addr returns the client's (0) or the local (1) address: a new *net.TCPAddr for a
// TCP one.
func (s *Session) addr(i int) net.Addr {
	if s.others != nil {
		return s.others[i]
	}
	ap := s.client
	if i == 1 {
		ap = s.local
	}
	return net.TCPAddrFromAddrPort(ap)
}

// clientString returns the client's address for logs.
func (s *Session) clientString() string {
	switch {
	case s.others == nil:
		return s.client.String()
	case s.others[0] != nil:
		return s.others[0].String()
	}
	return ""
}

// ClientAddr returns the client's address (the connection's remote address). For a
// TCP client it is a new *net.TCPAddr on each call.
func (s *Session) ClientAddr() net.Addr { return s.addr(0) }

// LocalAddr returns the address the client connected to. For a TCP client it is a new
// *net.TCPAddr on each call.
func (s *Session) LocalAddr() net.Addr { return s.addr(1) }

// TLS returns the state of the client connection's TLS when the service terminates it
// (an endpoint added with AddTLS), or nil. It is set after ConnectionFilter, before
// UpstreamPeer. Do not change it.
func (s *Session) TLS() *tls.ConnectionState {
	if s.tls == nil {
		return nil
	}
	return s.tls.state
}

// ServerName returns the server name the client asked for (TLS SNI), in lower case,
// when known: from the handshake on an endpoint that terminates TLS, from the
// ClientHello on a passthrough endpoint (before UpstreamPeer in both); otherwise "".
func (s *Session) ServerName() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.serverName
}

// ALPN returns the application protocols known for the connection: on a passthrough
// endpoint, the list the client offered, in its order; on an endpoint that terminates
// TLS, the one negotiated (none if the client offered none the service accepts). Do
// not change the slice.
func (s *Session) ALPN() []string {
	if s.tls == nil {
		return nil
	}
	return s.tls.alpn
}

// Start returns the time the connection was accepted.
func (s *Session) Start() time.Time { return s.start }

// Duration returns how long the connection lasted: up to now while it runs, and up to
// its end in Logging.
func (s *Session) Duration() time.Duration {
	if s.dur == 0 {
		return time.Since(s.start)
	}
	return s.dur
}

// Peer returns the peer of the current (or last) connection attempt, or nil before
// UpstreamPeer returned one.
func (s *Session) Peer() *Peer { return s.peer }

// Attempts returns the number of connection attempts made so far (retries included).
func (s *Session) Attempts() int { return s.attempts }

// BytesToUpstream returns the bytes copied from the client to the peer so far.
func (s *Session) BytesToUpstream() int64 { return s.bytes[0].Load() }

// BytesToClient returns the bytes copied from the peer to the client so far.
func (s *Session) BytesToClient() int64 { return s.bytes[1].Load() }
