package l4

import (
	"github.com/gotthard-proxy/gotthard/internal/proxyproto"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Peer is an upstream server to connect a client to. Return one from
// [ProxyTCP.UpstreamPeer]. A Peer may be made once and returned for many connections;
// the framework never changes it. Do not change a Peer after handing it to the
// framework: make a new one.
type Peer struct {
	// Network is "tcp" (the default when empty) or "unix".
	Network string
	// Address is "host:port" for tcp, or an absolute socket path for unix.
	Address string
	// ConnectTimeout bounds the dial and, with TLS, the handshake. If zero, the
	// service's ConnectTimeout.
	ConnectTimeout time.Duration
	// TLS, if not nil, makes the proxy originate TLS to the peer with this client
	// configuration (the bytes the client sends are then encrypted upstream). If its
	// ServerName is empty, the host part of Address is used for SNI and verification.
	// The framework clones it before use and does not change it.
	TLS *tls.Config
	// ProxyProtocol, 1 or 2, makes the proxy send a PROXY protocol header of that
	// version on the connection, before anything else (TLS included), naming the
	// client's address and the address it connected to (the session's, which a PROXY
	// header from a load balancer in front may have set). 0: none.
	ProxyProtocol uint8
}

// Validate reports what is wrong with p, naming the field, or nil.
func (p *Peer) Validate() error {
	switch p.Network {
	case "", "tcp":
		host, port, err := net.SplitHostPort(p.Address)
		if err != nil || host == "" {
			return fmt.Errorf("l4: invalid peer: Address %q is not host:port", p.Address)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("l4: invalid peer: Address %q has no valid port", p.Address)
		}
	case "unix":
		if !strings.HasPrefix(p.Address, "/") {
			return fmt.Errorf("l4: invalid peer: Address %q is not an absolute socket path", p.Address)
		}
	default:
		return fmt.Errorf("l4: invalid peer: Network %q is not tcp or unix", p.Network)
	}
	if p.ProxyProtocol > 2 {
		return fmt.Errorf("l4: invalid peer: ProxyProtocol %d is not 0, 1 or 2", p.ProxyProtocol)
	}
	if p.ConnectTimeout < 0 {
		return fmt.Errorf("l4: invalid peer: ConnectTimeout %v is negative", p.ConnectTimeout)
	}
	if p.TLS != nil && p.Network == "unix" && p.TLS.ServerName == "" && !p.TLS.InsecureSkipVerify {
		return errors.New("l4: invalid peer: TLS.ServerName is needed to verify a unix peer's certificate")
	}
	return nil
}

func (p *Peer) network() string {
	if p.Network == "" {
		return "tcp"
	}
	return p.Network
}

// dial connects to p within timeout (the peer's, or def), sends the PROXY protocol
// header for sess if p asks for one, and does the TLS handshake if p has TLS; it
// records in t, if not nil, when the connection was up and the handshake.
func (p *Peer) dial(ctx context.Context, def time.Duration, sess *Session, t *dialTimes) (net.Conn, error) {
	timeout := p.ConnectTimeout
	if timeout == 0 {
		timeout = def
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No TCP keep-alive probes (4 setsockopt calls per connection): the service's idle
	// timeout ends dead connections.
	d := net.Dialer{KeepAlive: -1}
	nc, err := d.DialContext(ctx, p.network(), p.Address)
	if err != nil {
		return nil, err
	}
	if t != nil {
		t.connected = time.Now()
	}
	if p.ProxyProtocol != 0 {
		if err := sendProxyHeader(ctx, nc, int(p.ProxyProtocol), sess); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if p.TLS == nil {
		return nc, nil
	}
	cfg := p.TLS.Clone()
	if cfg.ServerName == "" && p.network() == "tcp" {
		host, _, _ := net.SplitHostPort(p.Address)
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	err = tc.HandshakeContext(ctx)
	if t != nil {
		t.handshake = max(time.Since(t.connected), 1)
		if err == nil {
			cs := tc.ConnectionState()
			t.tls = &cs
		}
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// sendProxyHeader writes the PROXY protocol header of version for sess's client and
// local addresses on nc, within ctx's deadline. Addresses that are not IP (a Unix
// socket's) send a LOCAL header (v2) or UNKNOWN (v1), which tell the peer to use the
// connection's own.
func sendProxyHeader(ctx context.Context, nc net.Conn, version int, sess *Session) error {
	var b []byte
	var err error
	src, srcOK := unmapped(sess.client)
	dst, dstOK := unmapped(sess.local)
	switch {
	case srcOK && dstOK && src.Addr().Is4() == dst.Addr().Is4():
		b, err = proxyproto.Append(nil, version, src, dst)
	case version == 2:
		b = proxyproto.AppendLocal(nil)
	default:
		b = []byte("PROXY UNKNOWN\r\n")
	}
	if err != nil {
		return fmt.Errorf("l4: PROXY protocol header: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetWriteDeadline(dl)
		defer nc.SetWriteDeadline(time.Time{})
	}
	if _, err := nc.Write(b); err != nil {
		return fmt.Errorf("l4: writing the PROXY protocol header: %w", err)
	}
	return nil
}

// unmapped returns ap with an IPv4-mapped address as IPv4, and whether it is valid.
func unmapped(ap netip.AddrPort) (netip.AddrPort, bool) {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}
