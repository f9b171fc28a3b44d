package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Peer is an upstream server to send a request to: where it is, how to talk to it, and
// its timeouts. Return one from [ProxyHTTP.UpstreamPeer].
//
// A Peer may be made once and returned for many requests; the framework never changes it.
// Do not change a Peer after handing it to the framework: make a new one. Connections to
// peers with the same identity (network, address, TLS settings and group key) share one
// pool of idle connections.
type Peer struct {
	// Network is "tcp" (the default when empty) or "unix".
	Network string
	// Address is "host:port" for tcp, or a socket path for unix.
	Address string
	// TLS, if not nil, makes the connection use TLS.
	TLS *PeerTLS
	// GroupKey separates the pools of peers that are otherwise identical (for example to
	// keep tenants' upstream connections apart).
	GroupKey string
	// Protocol is the HTTP version spoken to the peer. If zero, [ProtoHTTP1].
	Protocol Protocol
	// Options holds timeouts and socket settings.
	Options PeerOptions
	// ProxyProtocol, 1 or 2, makes the proxy send a PROXY protocol header of that
	// version at the start of each new connection to the peer (before TLS), with the
	// client connection's addresses (those of its own PROXY protocol header, if it
	// came with one; "UNKNOWN" or AF_UNSPEC for a client on a Unix socket). If zero,
	// none. Connections carrying different headers are never shared: the pool keeps
	// those of each client connection apart, so a peer with ProxyProtocol reuses a
	// connection only for later requests of the same client connection. The phases
	// after UpstreamPeer receive a copy of such a peer, made once per client
	// connection, with the same exported fields.
	ProxyProtocol uint8

	// the client connection's addresses, for ProxyProtocol (see conn.upstreamPeer)
	ppSrc, ppDst netip.AddrPort
}

// Protocol is the HTTP version a proxy speaks to a peer.
type Protocol uint8

// Protocols.
const (
	// ProtoHTTP1 is HTTP/1.1, over TLS or not.
	ProtoHTTP1 Protocol = iota
	// ProtoHTTP2 is HTTP/2 only: over TLS with ALPN "h2", or in clear text (h2c) by
	// prior knowledge when the peer has no TLS. Connections are shared by concurrent
	// requests up to the peer's stream limit.
	ProtoHTTP2
	// ProtoHTTP2IfOffered is HTTP/2 when the peer's TLS handshake chooses "h2", and
	// HTTP/1.1 otherwise. It needs TLS.
	ProtoHTTP2IfOffered
)

// PeerTLS holds the TLS settings for an upstream connection. Every field is part of the
// peer's identity in the connection pool. The key exchange prefers the hybrid
// post-quantum X25519MLKEM768 (tls.DefaultCurves); sessions are resumed with tickets
// cached per peer identity.
type PeerTLS struct {
	// ServerName is sent as SNI and used to verify the certificate. If empty, the host
	// part of the peer's address is used.
	ServerName string
	// NoSNI sends no server name (for origins that misbehave with one). The certificate
	// is still verified, against VerifyName or else ServerName or the address's host.
	NoSNI bool
	// VerifyName, if not empty, is the name the peer's certificate is verified against
	// instead of the server name (for an origin reached by one name that presents a
	// certificate for another).
	VerifyName string
	// RootCAs verifies the peer's certificate; nil means the system roots. To verify
	// against a CA file, load it once with tls.LoadCAFile (package
	// github.com/gotthard-proxy/gotthard/tls).
	RootCAs *x509.CertPool
	// ClientCertificate, if not nil, is presented when the peer asks for one (mutual
	// TLS). Share one value between peers: the pointer is part of the pool identity.
	ClientCertificate *tls.Certificate
	// ALPN is the application protocol negotiation offered. If zero, [ALPNHTTP1].
	ALPN ALPN
	// MinVersion is the lowest TLS version accepted. If zero, TLS 1.2.
	MinVersion uint16
	// DisableSessionResumption makes every connection do a full handshake.
	DisableSessionResumption bool
	// InsecureSkipVerifyDangerous turns off certificate verification. It makes the
	// connection open to any man in the middle; use it only for tests.
	InsecureSkipVerifyDangerous bool
}

// ALPN is the application protocol negotiation offered to an upstream peer.
type ALPN uint8

const (
	// ALPNHTTP1 offers "http/1.1"; a peer that chooses anything else fails the
	// connection. It is the default.
	ALPNHTTP1 ALPN = iota
	// ALPNNone offers no ALPN extension (for origins that reject it).
	ALPNNone
)

// PeerOptions holds a peer's timeouts and socket settings. Zero fields mean the default
// given for each; so do negative timeouts, as in [ServiceOptions], except where a field
// gives negative a meaning of its own (IdleTimeout, TCPKeepAlive).
type PeerOptions struct {
	// ConnectTimeout bounds connecting (and the TLS handshake). If zero or negative, 10s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds each wait for data from the peer: the response head, and each
	// read of the body. If zero or negative, 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds each wait to write to the peer. If zero or negative, 60s.
	WriteTimeout time.Duration
	// IdleTimeout is how long an idle connection to the peer stays in the pool. If zero,
	// 60s; negative means connections are not kept.
	IdleTimeout time.Duration
	// TotalTimeout bounds a whole attempt, from the moment the connection is ready to the
	// end of the response body (ConnectTimeout bounds connecting). An attempt that runs
	// out of it fails with the error type TotalTimeout (504 if nothing was sent yet). If
	// zero (or negative), no bound beyond the others.
	TotalTimeout time.Duration
	// TCPKeepAlive is the keep-alive probe period of TCP connections. If zero, 15s;
	// negative turns probes off.
	TCPKeepAlive time.Duration
}

// NewPeer returns a TCP peer at addr ("host:port") with default options, or the error
// of [Peer.Validate] when addr is not a host and port ("127.0.0.1" and "http://host:80"
// are not). Fields set on the peer afterwards are checked when UpstreamPeer returns it.
func NewPeer(addr string) (*Peer, error) {
	p := &Peer{Network: "tcp", Address: addr}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate reports a peer that cannot work, naming the bad field: a Network other than
// "tcp", "unix" or empty; a ProxyProtocol other than 0, 1 or 2; for tcp an Address that is not "host:port" with a host and a
// numeric port from 1 to 65535 ("127.0.0.1" and "http://host:80" are not); for unix an
// Address that is not an absolute path; an unknown Protocol, or ProtoHTTP2IfOffered
// without TLS; and TLS settings that contradict each other: an unknown ALPN, a
// MinVersion that is not TLS 1.2 or 1.3, a ServerName or VerifyName that is not a host
// name, RootCAs or VerifyName with InsecureSkipVerifyDangerous (which verifies nothing),
// or a unix peer with no name to verify its certificate against. Negative timeouts are
// valid: they mean the default (see [PeerOptions]).
//
// A peer returned from UpstreamPeer that fails Validate ends its request at once with a
// 500 (an InternalError, not retried; the failure phases do not run).
func (p *Peer) Validate() error {
	switch p.Network {
	case "", "tcp":
		if err := validHostPort(p.Address); err != "" {
			return fmt.Errorf("proxy: invalid peer: Address %q %s", p.Address, err)
		}
	case "unix":
		if !strings.HasPrefix(p.Address, "/") {
			return fmt.Errorf("proxy: invalid peer: Address %q is not an absolute socket path", p.Address)
		}
	default:
		return fmt.Errorf("proxy: invalid peer: Network %q is not tcp or unix", p.Network)
	}
	switch p.Protocol {
	case ProtoHTTP1, ProtoHTTP2:
	case ProtoHTTP2IfOffered:
		if p.TLS == nil {
			return errors.New("proxy: invalid peer: Protocol ProtoHTTP2IfOffered needs TLS")
		}
	default:
		return fmt.Errorf("proxy: invalid peer: Protocol %d is unknown", p.Protocol)
	}
	if p.ProxyProtocol > 2 {
		return fmt.Errorf("proxy: invalid peer: ProxyProtocol %d is not 0, 1 or 2", p.ProxyProtocol)
	}
	if p.TLS == nil {
		return nil
	}
	t := p.TLS
	switch {
	case t.ALPN > ALPNNone:
		return fmt.Errorf("proxy: invalid peer: TLS.ALPN %d is unknown", t.ALPN)
	case t.MinVersion != 0 && t.MinVersion != tls.VersionTLS12 && t.MinVersion != tls.VersionTLS13:
		return fmt.Errorf("proxy: invalid peer: TLS.MinVersion %#04x is not TLS 1.2 or 1.3", t.MinVersion)
	case t.ServerName != "" && !validServerName(t.ServerName):
		return fmt.Errorf("proxy: invalid peer: TLS.ServerName %q is not a host name", t.ServerName)
	case t.VerifyName != "" && !validServerName(t.VerifyName):
		return fmt.Errorf("proxy: invalid peer: TLS.VerifyName %q is not a host name", t.VerifyName)
	case t.InsecureSkipVerifyDangerous && t.RootCAs != nil:
		return errors.New("proxy: invalid peer: TLS.RootCAs is set but InsecureSkipVerifyDangerous turns verification off")
	case t.InsecureSkipVerifyDangerous && t.VerifyName != "":
		return errors.New("proxy: invalid peer: TLS.VerifyName is set but InsecureSkipVerifyDangerous turns verification off")
	case p.Network == "unix" && t.ServerName == "" && t.VerifyName == "" && !t.InsecureSkipVerifyDangerous:
		return errors.New("proxy: invalid peer: TLS.ServerName (or VerifyName) is needed to verify a unix peer's certificate")
	}
	return nil
}

// validHostPort checks a "host:port" address without allocating; it returns what is
// wrong with it, or "".
func validHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		if !strings.Contains(addr, ":") {
			return "has no port (want host:port)"
		}
		return "is not host:port"
	case host == "":
		return "has no host (want host:port)"
	case strings.ContainsAny(host, "/ \t@"):
		return "is not host:port"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
		return "has no valid port (want a number from 1 to 65535)"
	}
	return ""
}

// validServerName reports whether name can be a TLS server name or the name a
// certificate is verified against: a host name or an IP address, without a port.
func validServerName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '*':
		case c == ':' || c == '%':
			// An IPv6 address, perhaps. (Parsed only then: a failed parse allocates.)
			_, err := netip.ParseAddr(name)
			return err == nil
		default:
			return false
		}
	}
	return true
}

// poolKey is the identity of a peer for connection pooling.
type poolKey struct {
	network, address, group string
	tls                     bool
	serverName              string
	roots                   *x509.CertPool
	skipVerify              bool
	noSNI, noResume         bool
	alpn                    ALPN
	minVersion              uint16
	verifyName              string
	clientCert              *tls.Certificate
	proto                   Protocol
	proxyProto              uint8
	ppSrc, ppDst            netip.AddrPort
}

func (p *Peer) key() poolKey {
	k := poolKey{network: p.network(), address: p.Address, group: p.GroupKey, proto: p.Protocol,
		proxyProto: p.ProxyProtocol, ppSrc: p.ppSrc, ppDst: p.ppDst}
	if p.TLS != nil {
		k.tls = true
		k.serverName = p.TLS.ServerName
		k.roots = p.TLS.RootCAs
		k.skipVerify = p.TLS.InsecureSkipVerifyDangerous
		k.noSNI, k.noResume = p.TLS.NoSNI, p.TLS.DisableSessionResumption
		k.alpn, k.minVersion = p.TLS.ALPN, p.TLS.MinVersion
		k.verifyName, k.clientCert = p.TLS.VerifyName, p.TLS.ClientCertificate
	}
	return k
}

func (p *Peer) network() string {
	if p.Network == "" {
		return "tcp"
	}
	return p.Network
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (o *PeerOptions) connectTimeout() time.Duration { return durOr(o.ConnectTimeout, 10*time.Second) }
func (o *PeerOptions) readTimeout() time.Duration    { return durOr(o.ReadTimeout, 60*time.Second) }
func (o *PeerOptions) writeTimeout() time.Duration   { return durOr(o.WriteTimeout, 60*time.Second) }
func (o *PeerOptions) idleTimeout() time.Duration    { return orDefault(o.IdleTimeout, 60*time.Second) }
func (o *PeerOptions) keepAlive() time.Duration      { return orDefault(o.TCPKeepAlive, 15*time.Second) }
