package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

// dial connects to p within timeout (the peer's, or def) and does the TLS handshake if
// p has TLS.
func (p *Peer) dial(ctx context.Context, def time.Duration) (net.Conn, error) {
	timeout := p.ConnectTimeout
	if timeout == 0 {
		timeout = def
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, p.network(), p.Address)
	if err != nil {
		return nil, err
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
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}
