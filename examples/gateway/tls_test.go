package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gtls "github.com/gotthard-proxy/gotthard/tls"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// certFiles writes a self-signed certificate for names and its key to files in dir, for
// -cert and -key; it returns the certificate's PEM (for clients' roots) and the paths.
func certFiles(t *testing.T, dir string, names ...string) (certPEM []byte, cert, key string) {
	t.Helper()
	certPEM, keyPEM, err := gtls.SelfSigned(names, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM, cert, key
}

func TestTLSListen(t *testing.T) {
	dir := t.TempDir()
	certPEM, cert, key := certFiles(t, dir, "gw.test")
	plain, secure := freeAddr(t), freeAddr(t)
	p := startGateway(t, "-listen", plain, "-tls-listen", secure, "-cert", cert, "-key", key)
	p.waitAccepting(t, secure)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "gw.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, url := range []string{"https://" + secure + "/", "http://" + plain + "/"} {
		resp, err := cl.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "demo origin") {
			t.Errorf("%s: %s %d %q", url, resp.Proto, resp.StatusCode, b)
		}
		if resp.TLS != nil && (resp.TLS.NegotiatedProtocol != "h2" || resp.Proto != "HTTP/2.0") {
			t.Errorf("ALPN %q, proto %s: want h2", resp.TLS.NegotiatedProtocol, resp.Proto)
		}
	}
}

func TestTLSFlagsTogether(t *testing.T) {
	p := startGateway(t, "-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0")
	select {
	case <-p.exited:
		if !strings.Contains(p.stderr.String(), "go together") {
			t.Errorf("stderr: %s", p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway started without -cert and -key")
	}
}
