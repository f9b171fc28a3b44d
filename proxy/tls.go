package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// AddTLS adds a TCP endpoint ("host:port"; port 0 picks a free one) whose connections
// speak TLS with cfg: the listener stays a plain TCP listener (so a server.Server creates
// it, and an upgrade can hand it over like any other), and each accepted connection does
// its handshake on its own goroutine, bounded by [ServiceOptions.TLSHandshakeTimeout],
// before its first request. A failed handshake closes that connection only and is logged
// at Info. ALPN offers what cfg offers; the connection then speaks HTTP/1.1.
// X-Forwarded-Proto is "https" on requests from these connections, and
// [Session.TLS] describes the connection.
func (s *Service[C]) AddTLS(addr string, cfg *gtls.Config) {
	if cfg == nil {
		panic("proxy: AddTLS with a nil *tls.Config")
	}
	s.addEndpoint(endpoint{network: "tcp", address: addr, tls: cfg})
}

// endpointTLS returns the TLS configuration of the i-th endpoint, or nil.
func (s *Service[C]) endpointTLS(i int) *gtls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < len(s.endpoints) {
		if e, ok := s.endpoints[i].(endpoint); ok {
			return e.tls
		}
	}
	return nil
}

func wrapTLS(nc net.Conn, cfg *gtls.Config) net.Conn {
	if cfg == nil {
		return nc
	}
	return tls.Server(nc, cfg.ServerConfig())
}

// handshake runs the TLS handshake of a connection on a TLS endpoint and records its
// state; it reports whether the connection may go on. Plain connections pass through.
func (c *conn[C]) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	s := c.svc
	// Close and Shutdown close the connection, which ends a handshake in progress.
	start := time.Now()
	tc.SetDeadline(start.Add(durOr(s.opts.TLSHandshakeTimeout, 10*time.Second)))
	if err := tc.Handshake(); err != nil {
		if !s.closing.Load() && !isQuietHandshakeError(err) {
			s.log.Info("tls handshake failed", "client", c.clientS, "err", err)
		}
		c.observeHandshake(start, nil, err)
		return false
	}
	tc.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	c.tls = &cs
	c.observeHandshake(start, c.tls, nil)
	return true
}

// isQuietHandshakeError reports errors not worth a log line: a client that connected and
// closed without a word (port checks, load balancer probes).
func isQuietHandshakeError(err error) bool {
	return errors.Is(err, io.EOF)
}

// TLS returns the state of the client connection's TLS: version, cipher suite, the
// negotiated key exchange (CurveID; X25519MLKEM768 for a post-quantum handshake), ALPN
// protocol, the server name the client sent (SNI), whether the session was resumed, and
// the client's certificates with their verified chains under mutual TLS. It returns nil
// for a connection without TLS. The value is shared by the connection's requests: do not
// change it.
func (s *Session) TLS() *tls.ConnectionState { return s.tls }
