package proxy

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// pki is a test certificate authority with the files of the certificates it issued.
type pki struct {
	dir    string
	cert   *x509.Certificate
	key    crypto.Signer
	caFile string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), key: key}
	p.cert, _ = x509.ParseCertificate(der)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writeFile(t, p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *pki) pool() *x509.CertPool {
	cp := x509.NewCertPool()
	cp.AddCert(p.cert)
	return cp
}

// issue writes a certificate for cn (server or client use) and returns its files.
func (p *pki) issue(t testing.TB, cn string, names []string, client bool) gtls.CertFile {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cf := gtls.CertFile{CertFile: filepath.Join(p.dir, cn+".pem"), KeyFile: filepath.Join(p.dir, cn+".key")}
	writeFile(t, cf.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, cf.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return cf
}

func (p *pki) keyPair(t testing.TB, cf gtls.CertFile) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsSeen records what the phases saw of the client connection's TLS.
type tlsSeen struct {
	mu    sync.Mutex
	last  *tls.ConnectionState
	plain bool
}

// tlsProxy proxies to one peer and records Session.TLS.
type tlsProxy struct {
	Phases[*testCtx]
	peer *Peer
	seen *tlsSeen
}

func (tlsProxy) NewCtx() *testCtx { return &testCtx{} }
func (p tlsProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

// RequestFilter records Session.TLS before the response goes out.
func (p tlsProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	p.seen.mu.Lock()
	defer p.seen.mu.Unlock()
	p.seen.last = s.TLS()
	p.seen.plain = s.TLS() == nil
	return Continue, nil
}

// startTLSProxy serves svc with a plain endpoint and a TLS endpoint made from opts,
// until the test ends, and returns both addresses.
func startTLSProxy[C any](t testing.TB, svc *Service[C], opts gtls.Options) (plain, secure string) {
	t.Helper()
	cfg, err := gtls.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(pln.Addr().String())
	svc.AddTLS(sln.Addr().String(), cfg)
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{pln, sln}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pln.Addr().String(), sln.Addr().String()
}

func tlsClient(t testing.TB, cc *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func getBody(t testing.TB, cl *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestTLSTermination(t *testing.T) {
	p := newPKI(t)
	def := p.issue(t, "default", []string{"default.test"}, false)
	api := p.issue(t, "api", []string{"api.test"}, false)
	origin := startXFPOrigin(t)
	seen := &tlsSeen{}
	svc, _ := newTestService[*testCtx](t, tlsProxy{peer: testPeer(origin), seen: seen}, ServiceOptions{})
	plain, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{def, api}})

	cc := &tls.Config{ServerName: "api.test", RootCAs: p.pool()}
	resp, body := getBody(t, tlsClient(t, cc), "https://"+secure+"/x")
	if resp.StatusCode != 200 || body != "proto=https" {
		t.Fatalf("TLS: %d %q", resp.StatusCode, body)
	}
	if resp.Proto != "HTTP/2.0" || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("proto %s ALPN %q, want HTTP/2 by ALPN", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "api" {
		t.Errorf("SNI api.test got certificate %q", cn)
	}
	seen.mu.Lock()
	st := seen.last
	seen.mu.Unlock()
	if st == nil || st.ServerName != "api.test" || st.NegotiatedProtocol != "h2" ||
		st.CurveID != tls.X25519MLKEM768 || st.Version != tls.VersionTLS13 {
		t.Errorf("Session.TLS: %+v", st)
	}

	// The plain endpoint of the same service stays plain.
	resp, body = getBody(t, testClient(t), "http://"+plain+"/x")
	if resp.StatusCode != 200 || body != "proto=http" {
		t.Errorf("plain: %d %q", resp.StatusCode, body)
	}
	seen.mu.Lock()
	if !seen.plain {
		t.Error("Session.TLS not nil on the plain endpoint")
	}
	seen.mu.Unlock()
}

// startXFPOrigin answers with the X-Forwarded-Proto it got.
func startXFPOrigin(t testing.TB) string {
	_, addr := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "proto="+r.Header.Get("X-Forwarded-Proto"))
	}))
	return addr
}

func TestTLSHandshakeFailureIsolated(t *testing.T) {
	p := newPKI(t)
	origin := startXFPOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{TLSHandshakeTimeout: 200 * time.Millisecond})
	_, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{p.issue(t, "s", []string{"s.test"}, false)}})

	// A client that stays silent is cut at the handshake timeout.
	silent, err := net.Dial("tcp", secure)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Garbage instead of a client hello fails at once.
	if out := rawExchange(t, secure, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); strings.Contains(out, "200") {
		t.Fatalf("plain HTTP on the TLS endpoint got %q", out)
	}
	// A TLS 1.1 client is refused.
	if _, err := tls.Dial("tcp", secure, &tls.Config{ServerName: "s.test", RootCAs: p.pool(), MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	// Meanwhile a good client is served.
	resp, body := getBody(t, tlsClient(t, &tls.Config{ServerName: "s.test", RootCAs: p.pool()}), "https://"+secure+"/")
	if resp.StatusCode != 200 || body != "proto=https" {
		t.Errorf("good client: %d %q", resp.StatusCode, body)
	}
	silent.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("silent client: read %v, want EOF from the handshake timeout", err)
	}
	if n := strings.Count(logs.String(), "tls handshake failed"); n < 2 {
		t.Errorf("%d handshake failures logged, want one per failed connection:\n%s", n, logs)
	}
}

func TestTLSMutualAuthInSession(t *testing.T) {
	p := newPKI(t)
	origin := startXFPOrigin(t)
	seen := &tlsSeen{}
	svc, _ := newTestService[*testCtx](t, tlsProxy{peer: testPeer(origin), seen: seen}, ServiceOptions{})
	_, secure := startTLSProxy(t, svc, gtls.Options{
		Certificates: []gtls.CertFile{p.issue(t, "s", []string{"s.test"}, false)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAFile: p.caFile,
	})
	alice := p.keyPair(t, p.issue(t, "alice", nil, true))
	resp, _ := getBody(t, tlsClient(t, &tls.Config{ServerName: "s.test", RootCAs: p.pool(), Certificates: []tls.Certificate{alice}}), "https://"+secure+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	seen.mu.Lock()
	st := seen.last
	seen.mu.Unlock()
	if st == nil || len(st.VerifiedChains) == 0 || st.VerifiedChains[0][0].Subject.CommonName != "alice" {
		t.Fatalf("Session.TLS does not show the verified client: %+v", st)
	}
	cl := tlsClient(t, &tls.Config{ServerName: "s.test", RootCAs: p.pool()})
	if resp, err := cl.Get("https://" + secure + "/"); err == nil {
		resp.Body.Close()
		t.Error("a client without a certificate was served")
	}
}

// TestTLSCurl checks termination with curl: SNI chooses the certificate, ALPN gives
// HTTP/1.1 even when curl offers h2, and mutual TLS refuses curl without a certificate.
func TestTLSCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed (Debian package curl)")
	}
	p := newPKI(t)
	def := p.issue(t, "default", []string{"default.test"}, false)
	api := p.issue(t, "api", []string{"api.test"}, false)
	origin := startXFPOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	_, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{def, api}})
	_, port, _ := net.SplitHostPort(secure)

	svc2, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	_, mtls := startTLSProxy(t, svc2, gtls.Options{
		Certificates: []gtls.CertFile{def},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAFile: p.caFile,
	})
	_, mport, _ := net.SplitHostPort(mtls)
	client := p.issue(t, "curl-client", nil, true)

	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr bool
	}{
		{"SNI api", []string{"-v", "--resolve", "api.test:" + port + ":127.0.0.1", "https://api.test:" + port + "/"},
			[]string{"subject: CN=api", "proto=https", "ALPN: server accepted h2"}, false},
		{"SNI default", []string{"-v", "--resolve", "default.test:" + port + ":127.0.0.1", "https://default.test:" + port + "/"},
			[]string{"subject: CN=default", "proto=https"}, false},
		{"h2 offered and chosen", []string{"-v", "--http2", "--resolve", "api.test:" + port + ":127.0.0.1", "https://api.test:" + port + "/"},
			[]string{"HTTP/2 200", "proto=https"}, false},
		{"HTTP/1.1 only", []string{"-v", "--http1.1", "--resolve", "api.test:" + port + ":127.0.0.1", "https://api.test:" + port + "/"},
			[]string{"HTTP/1.1 200", "ALPN: server accepted http/1.1", "proto=https"}, false},
		{"mTLS with certificate", []string{"-v", "--cert", client.CertFile, "--key", client.KeyFile,
			"--resolve", "default.test:" + mport + ":127.0.0.1", "https://default.test:" + mport + "/"},
			[]string{"proto=https"}, false},
		{"mTLS without certificate", []string{"-v", "--resolve", "default.test:" + mport + ":127.0.0.1", "https://default.test:" + mport + "/"},
			nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-sS", "--max-time", "10", "--cacert", p.caFile}, tt.args...)
			out, err := exec.Command(curl, args...).CombinedOutput()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("curl succeeded:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Fatalf("curl output lacks %q:\n%.3000s", w, out)
				}
			}
		})
	}
}

// TestTLSOpenSSL checks termination with openssl s_client: SNI, ALPN, and the hybrid
// post-quantum group where the installed OpenSSL has it (3.5 and later).
func TestTLSOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (Debian package openssl)")
	}
	p := newPKI(t)
	def := p.issue(t, "default", []string{"default.test"}, false)
	api := p.issue(t, "api", []string{"api.test"}, false)
	origin := startXFPOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	_, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{def, api}})

	sClient := func(args ...string) (string, error) {
		args = append([]string{"s_client", "-connect", secure, "-CAfile", p.caFile}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, args...)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := sClient("-servername", "api.test", "-alpn", "http/1.1", "-ign_eof")
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	for _, w := range []string{"CN = api", "ALPN protocol: http/1.1", "Verify return code: 0 (ok)", "proto=https"} {
		if !strings.Contains(out, w) {
			t.Errorf("s_client output lacks %q:\n%.3000s", w, out)
		}
	}
	out, err = sClient("-servername", "api.test", "-groups", "X25519MLKEM768", "-ign_eof")
	if err != nil && (strings.Contains(out, "Call to SSL_CONF_cmd") || strings.Contains(out, "group") && strings.Contains(out, "error")) {
		t.Skipf("this OpenSSL has no X25519MLKEM768 (needs 3.5+); the Go client checks the group in TestTLSTermination:\n%.500s", out)
	}
	if err != nil {
		t.Fatalf("openssl s_client -groups X25519MLKEM768: %v\n%s", err, out)
	}
	if !strings.Contains(out, "X25519MLKEM768") {
		t.Errorf("s_client does not show X25519MLKEM768:\n%.3000s", out)
	}
}
