package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	ctls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Gotthard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue returns a leaf certificate and key (PEM) for cn with the given DNS names, key
// type ("ecdsa", "rsa", "ed25519") and use (server or client).
func (ca *testCA) issue(t testing.TB, cn string, names []string, keyType string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch keyType {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if keyType == "rsa" {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writeCert writes a certificate and key into dir as name.pem and name.key.
func writeCert(t testing.TB, dir, name string, certPEM, keyPEM []byte) CertFile {
	t.Helper()
	cf := CertFile{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(cf.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cf
}

// serve accepts TLS connections with cfg on loopback until the test ends; each
// connection completes its handshake, then the server writes "ok" and closes.
func serve(t testing.TB, cfg *Config) string {
	t.Helper()
	return serveStates(t, cfg, nil)
}

// serveStates is serve that also sends the server side's state of each successful
// handshake on states, if not nil, before writing "ok".
func serveStates(t testing.TB, cfg *Config, states chan<- ctls.ConnectionState) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		conns := make(chan struct{}, 64)
		defer func() {
			for range cap(conns) {
				conns <- struct{}{}
			}
		}()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			go func() {
				defer func() { <-conns }()
				defer nc.Close()
				tc := ctls.Server(nc, cfg.ServerConfig())
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					if states != nil {
						states <- tc.ConnectionState()
					}
					tc.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with addr using cc and returns the connection state.
func dial(addr string, cc *ctls.Config) (ctls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tc, err := ctls.DialWithDialer(d, "tcp", addr, cc)
	if err != nil {
		return ctls.ConnectionState{}, err
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := tc.Read(buf); err != nil { // completes the TLS 1.3 ticket exchange too
		return ctls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

// file issues a server certificate for cn and names and writes it into dir as name.pem
// and name.key.
func (ca *testCA) file(t testing.TB, dir, name, cn string, names []string, keyType string) CertFile {
	t.Helper()
	c, k := ca.issue(t, cn, names, keyType, false)
	return writeCert(t, dir, name, c, k)
}

// quietLogger drops the logs of expected failures.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
