package proxytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
	"github.com/gotthard-proxy/gotthard/proxy"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// shutdownWait bounds how long cleanup waits for a service or origin to stop.
const shutdownWait = 10 * time.Second

// Cert is a throwaway self-signed certificate for localhost, 127.0.0.1 and ::1, made at
// run time. It is for tests only.
type Cert struct {
	// Config serves the certificate: pass it to [proxy.Service.AddTLS].
	Config *gtls.Config
	// RootCAs trusts the certificate, for clients and for [proxy.PeerTLS.RootCAs].
	RootCAs *x509.CertPool
	// CertFile and KeyFile hold the certificate and its key, PEM-encoded, in a directory
	// removed when the test ends.
	CertFile, KeyFile string
}

// NewCert makes a throwaway self-signed certificate (see [Cert]).
func NewCert(t testing.TB) *Cert {
	t.Helper()
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1", "::1"}, 0)
	if err != nil {
		t.Fatalf("proxytest: self-signed certificate: %v", err)
	}
	dir := t.TempDir()
	c := &Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	c.Config, err = gtls.New(gtls.Options{
		Name:         "proxytest",
		Certificates: []gtls.CertFile{{CertFile: c.CertFile, KeyFile: c.KeyFile}},
	})
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	c.RootCAs = x509.NewCertPool()
	c.RootCAs.AppendCertsFromPEM(certPEM)
	return c
}

// clientTLS returns the client TLS configuration that trusts cert, or nil.
func (c *Cert) clientTLS() *tls.Config {
	if c == nil {
		return nil
	}
	return &tls.Config{RootCAs: c.RootCAs}
}

// Origin is an HTTP server on a loopback port, started by [NewOrigin] or [NewTLSOrigin].
type Origin struct {
	// Addr is the origin's "127.0.0.1:port".
	Addr string
	// URL is "http://Addr" or "https://Addr".
	URL string
	// Cert is the origin's certificate for a TLS origin; nil otherwise.
	Cert *Cert
	srv  *httptest.Server
}

// NewOrigin starts an origin serving h over HTTP/1.1 and h2c (HTTP/2 in clear text by
// prior knowledge) on a loopback port. It is closed when the test ends.
func NewOrigin(t testing.TB, h http.Handler) *Origin {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Origin{Addr: srv.Listener.Addr().String(), URL: srv.URL, srv: srv}
}

// NewTLSOrigin starts an origin serving h over HTTP/1.1 and HTTP/2 over TLS (chosen by
// ALPN) on a loopback port, with a throwaway certificate ([Origin.Cert]). It is closed
// when the test ends.
func NewTLSOrigin(t testing.TB, h http.Handler) *Origin {
	t.Helper()
	cert := NewCert(t)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cert.Config.ServerConfig()
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetHTTP2(true)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &Origin{Addr: srv.Listener.Addr().String(), URL: srv.URL, Cert: cert, srv: srv}
}

// Peer returns a peer for the origin that speaks HTTP/1.1 (over TLS, trusting the
// origin's certificate, for a TLS origin).
func (o *Origin) Peer() *proxy.Peer { return o.peer(proxy.ProtoHTTP1) }

// H2Peer returns a peer for the origin that speaks HTTP/2: h2c for an origin from
// [NewOrigin], h2 over TLS for one from [NewTLSOrigin].
func (o *Origin) H2Peer() *proxy.Peer { return o.peer(proxy.ProtoHTTP2) }

func (o *Origin) peer(p proxy.Protocol) *proxy.Peer {
	peer := &proxy.Peer{Address: o.Addr, Protocol: p}
	if o.Cert != nil {
		peer.TLS = &proxy.PeerTLS{RootCAs: o.Cert.RootCAs}
	}
	return peer
}

// Service is what [Serve] runs; a *proxy.Service[C] is one.
type Service interface {
	Name() string
	AddTCP(addr string)
	Endpoints() []net.Addr
	Check() error
	Serve(lns []net.Listener) error
	Shutdown(ctx context.Context) error
	Close() error
}

// NewService is [proxy.NewService] for a test: it fails t when the service cannot be
// made (an empty name, a nil app, options that cannot work).
func NewService[C any](t testing.TB, name string, app proxy.ProxyHTTP[C], opts proxy.ServiceOptions) *proxy.Service[C] {
	t.Helper()
	svc, err := proxy.NewService(name, app, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// Serve checks svc with its Check method (options, TLS endpoints, and the phase names
// of its ProxyHTTP, see [proxy.CheckPhases]), failing the test on a problem, then serves
// it on loopback until the test ends, when it shuts svc down and waits for it. It
// returns the address of svc's first endpoint.
//
// Each TCP or TLS endpoint of svc listens on its own free port of 127.0.0.1 whatever
// address it names, so a service built for production ("0.0.0.0:443") can be served
// as it is; a Unix endpoint listens on a socket in a temporary directory. A service
// with no endpoints gets one plain TCP endpoint.
func Serve(t testing.TB, svc Service) string {
	t.Helper()
	return ServeAll(t, svc)[0]
}

// ServeAll is [Serve] returning the address of each endpoint of svc, in the order of
// svc.Endpoints: for a service with a plain and a TLS endpoint, say.
func ServeAll(t testing.TB, svc Service) []string {
	t.Helper()
	if len(svc.Endpoints()) == 0 {
		svc.AddTCP("127.0.0.1:0")
	}
	if err := svc.Check(); err != nil {
		t.Fatalf("proxytest: service %s: %v", svc.Name(), err)
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for i, ep := range svc.Endpoints() {
		var ln net.Listener
		var err error
		if ep.Network() == "unix" {
			// A short directory: socket paths are limited to about 100 bytes.
			dir, derr := os.MkdirTemp("", "pt")
			if derr != nil {
				closeAll()
				t.Fatalf("proxytest: %v", derr)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			ln, err = net.Listen("unix", filepath.Join(dir, "s.sock"))
		} else {
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			closeAll()
			t.Fatalf("proxytest: service %s: endpoint %d: %v", svc.Name(), i, err)
		}
		lns = append(lns, ln)
	}
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(lns) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			t.Errorf("proxytest: service %s: shutdown: %v", svc.Name(), err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("proxytest: service %s: Serve: %v", svc.Name(), err)
			}
		case <-time.After(shutdownWait):
			t.Errorf("proxytest: service %s: Serve did not return after Shutdown", svc.Name())
		}
	})
	return addrs
}

// FixedPeer is a ProxyHTTP that sends every request to Peer and does nothing else: the
// proxy a test or benchmark of something around the proxy (an observer, a module) needs.
// Embed it to add phases.
type FixedPeer struct {
	proxy.Phases[struct{}]
	// Peer is where every request goes.
	Peer *proxy.Peer
}

var _ proxy.ProxyHTTP[struct{}] = FixedPeer{}

// NewCtx returns the empty per-request state.
func (FixedPeer) NewCtx() struct{} { return struct{}{} }

// UpstreamPeer returns p.Peer.
func (p FixedPeer) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return p.Peer, nil
}

// DeadAddr returns a loopback address ("127.0.0.1:port") where connections are
// refused for the test's whole run: its port is held by a socket that never listens, so
// no other listener can take it meanwhile. It is released when the test ends.
func DeadAddr(t testing.TB) string {
	t.Helper()
	return testnet.DeadAddr(t)
}

// CheckPhases fails the test if app has methods named like misspelt phases (see
// [proxy.CheckPhases]).
func CheckPhases(t testing.TB, app any) {
	t.Helper()
	if err := proxy.CheckPhases(app); err != nil {
		t.Error(err)
	}
}

// H1Client returns a client that speaks HTTP/1.1 only; for https URLs it trusts cert
// (nil: the system roots). Its idle connections are closed when the test ends.
func H1Client(t testing.TB, cert *Cert) *http.Client {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return newClient(t, p, cert.clientTLS())
}

// H2CClient returns a client that speaks HTTP/2 in clear text by prior knowledge (h2c),
// for http URLs. Its idle connections are closed when the test ends.
func H2CClient(t testing.TB) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return newClient(t, p, nil)
}

// H2Client returns a client that speaks HTTP/2 over TLS only (ALPN "h2"), for https
// URLs, trusting cert (nil: the system roots). Its idle connections are closed when the
// test ends.
func H2Client(t testing.TB, cert *Cert) *http.Client {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	return newClient(t, p, cert.clientTLS())
}

func newClient(t testing.TB, p *http.Protocols, tc *tls.Config) *http.Client {
	tr := &http.Transport{Protocols: p, TLSClientConfig: tc, ForceAttemptHTTP2: p.HTTP2()}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
