package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// sessionCacheSize is the number of TLS sessions cached per peer identity for resumption.
const sessionCacheSize = 64

// tlsConfig returns the client configuration of a TLS peer, made once per peer identity
// (and kept in its hostPool) so that its session cache lets later connections resume.
func (p *connPool) tlsConfig(peer *Peer) *tls.Config {
	h := p.host(peer.key(), time.Now(), &peer.Options)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tlsConfig == nil {
		h.tlsConfig = newPeerTLSConfig(peer)
	}
	return h.tlsConfig
}

func newPeerTLSConfig(peer *Peer) *tls.Config {
	pt := peer.TLS
	name := pt.ServerName
	if name == "" {
		host, _, err := net.SplitHostPort(peer.Address)
		if err != nil {
			host = peer.Address
		}
		name = host
	}
	cfg := &tls.Config{
		ServerName:         name,
		RootCAs:            pt.RootCAs,
		InsecureSkipVerify: pt.InsecureSkipVerifyDangerous,
		MinVersion:         max(pt.MinVersion, tls.VersionTLS12),
		CurvePreferences:   gtls.DefaultCurves(),
	}
	if pt.ALPN == ALPNHTTP1 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	if pt.ClientCertificate != nil {
		cert := pt.ClientCertificate
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cert, nil
		}
	}
	if !pt.DisableSessionResumption {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
	}
	verifyName := name
	if pt.VerifyName != "" {
		verifyName = pt.VerifyName
	}
	if pt.NoSNI {
		cfg.ServerName = ""
	}
	if !pt.InsecureSkipVerifyDangerous && (pt.NoSNI || verifyName != name) {
		// crypto/tls verifies against the SNI name: verify here instead, against the
		// chosen name. VerifyConnection also runs on resumed connections.
		roots := pt.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPeer(cs, roots, verifyName)
		}
	}
	return cfg
}

// verifyPeer verifies a peer's certificate chain against roots (nil: the system's) and
// name, as crypto/tls does for its ServerName.
func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("proxy: peer sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("proxy: peer certificate: %w", err)
	}
	return nil
}

// handshake runs the TLS handshake with a peer, offering alpn, bounded by its connect
// timeout.
func (p *connPool) handshake(ctx context.Context, nc net.Conn, peer *Peer, alpn string) (net.Conn, error) {
	cfg := p.tlsConfig(peer)
	if alpn != "http/1.1" {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{alpn}
	}
	ctx, cancel := context.WithTimeout(ctx, peer.Options.connectTimeout())
	defer cancel()
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", peer.Address, err)
	}
	if proto := tc.ConnectionState().NegotiatedProtocol; proto != alpn && (alpn != "http/1.1" || proto != "") {
		tc.Close()
		return nil, fmt.Errorf("tls handshake with %s: peer chose ALPN %q, not %q", peer.Address, proto, alpn)
	}
	return tc, nil
}
