package tls

import (
	"crypto/fips140"
	ctls "crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSNISelection(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	def := ca.file(t, dir, "default", "default", []string{"default.test"}, "ecdsa")
	api := ca.file(t, dir, "api", "api", []string{"api.example.com"}, "ecdsa")
	wild := ca.file(t, dir, "wild", "wild", []string{"*.example.com"}, "ecdsa")
	named := ca.file(t, dir, "named", "named", []string{"ignored.test"}, "ecdsa")
	named.Names = []string{"Other.Example.ORG"}
	cfg, err := New(Options{Certificates: []CertFile{def, api, wild, named}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	tests := []struct {
		name, sni, wantCN string
	}{
		{"exact", "api.example.com", "api"},
		{"exact case-insensitive", "API.Example.Com", "api"},
		{"trailing dot", "api.example.com.", "api"},
		{"wildcard", "www.example.com", "wild"},
		{"wildcard one label only", "a.b.example.com", "default"},
		{"apex not matched by wildcard", "example.com", "default"},
		{"explicit names", "other.example.org", "named"},
		{"unknown name gets default", "nothing.test", "default"},
		{"no SNI gets default", "", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &ctls.Config{ServerName: tt.sni, InsecureSkipVerify: true}
			if tt.sni == "" {
				cc.ServerName = ""
			}
			st, err := dial(addr, cc)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.PeerCertificates[0].Subject.CommonName; got != tt.wantCN {
				t.Errorf("SNI %q: served %q, want %q", tt.sni, got, tt.wantCN)
			}
		})
	}
}

func TestKeyTypes(t *testing.T) {
	ca := newTestCA(t)
	for _, kt := range []string{"ecdsa", "rsa", "ed25519"} {
		t.Run(kt, func(t *testing.T) {
			dir := t.TempDir()
			cf := ca.file(t, dir, kt, kt, []string{"h.test"}, kt)
			cfg, err := New(Options{Certificates: []CertFile{cf}})
			if err != nil {
				t.Fatal(err)
			}
			st, err := dial(serve(t, cfg), &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
			if err != nil {
				t.Fatal(err)
			}
			if st.PeerCertificates[0].Subject.CommonName != kt {
				t.Errorf("served %q", st.PeerCertificates[0].Subject.CommonName)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	ca := newTestCA(t)
	cf := ca.file(t, t.TempDir(), "c", "c", []string{"h.test"}, "ecdsa")
	cfg, err := New(Options{Certificates: []CertFile{cf}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	t.Run("ALPN prefers h2", func(t *testing.T) {
		st, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if st.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN %q, want h2", st.NegotiatedProtocol)
		}
	})
	t.Run("post-quantum key exchange", func(t *testing.T) {
		st, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatal(err)
		}
		if st.CurveID != ctls.X25519MLKEM768 || st.Version != ctls.VersionTLS13 {
			t.Errorf("group %v version %#x, want X25519MLKEM768 over TLS 1.3", st.CurveID, st.Version)
		}
	})
	t.Run("classical client still served", func(t *testing.T) {
		st, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), CurvePreferences: []ctls.CurveID{ctls.CurveP256}})
		if err != nil {
			t.Fatal(err)
		}
		if st.CurveID != ctls.CurveP256 {
			t.Errorf("group %v", st.CurveID)
		}
	})
	t.Run("TLS 1.2 accepted", func(t *testing.T) {
		st, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), MaxVersion: ctls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != ctls.VersionTLS12 {
			t.Errorf("version %#x", st.Version)
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		if _, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), MinVersion: ctls.VersionTLS10, MaxVersion: ctls.VersionTLS11}); err == nil {
			t.Error("TLS 1.1 handshake succeeded")
		}
	})
}

func TestTLS13Only(t *testing.T) {
	ca := newTestCA(t)
	cf := ca.file(t, t.TempDir(), "c", "c", []string{"h.test"}, "ecdsa")
	cfg, err := New(Options{Certificates: []CertFile{cf}, MinVersion: ctls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if _, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), MaxVersion: ctls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 handshake succeeded on a TLS-1.3-only config")
	}
	if _, err := dial(addr, &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()}); err != nil {
		t.Error(err)
	}
}

func TestCertificateCallback(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	def := ca.file(t, dir, "default", "default", []string{"default.test"}, "ecdsa")
	dynPEM, dynKey := ca.issue(t, "dynamic", []string{"dyn.test"}, "ecdsa", false)
	dyn, err := ctls.X509KeyPair(dynPEM, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := New(Options{
		Certificates: []CertFile{def},
		GetCertificate: func(hello *ctls.ClientHelloInfo) (*ctls.Certificate, error) {
			switch hello.ServerName {
			case "dyn.test":
				return &dyn, nil
			case "refused.test":
				return nil, errors.New("not ours")
			}
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	tests := []struct {
		sni, wantCN string
		wantErr     bool
	}{
		{"dyn.test", "dynamic", false},
		{"other.test", "default", false},
		{"refused.test", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			st, err := dial(addr, &ctls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
			if tt.wantErr {
				if err == nil {
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := st.PeerCertificates[0].Subject.CommonName; got != tt.wantCN {
				t.Errorf("served %q, want %q", got, tt.wantCN)
			}
		})
	}
}

func TestCallbackOnly(t *testing.T) {
	ca := newTestCA(t)
	p, k := ca.issue(t, "cb", []string{"cb.test"}, "ecdsa", false)
	cert, err := ctls.X509KeyPair(p, k)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := New(Options{GetCertificate: func(h *ctls.ClientHelloInfo) (*ctls.Certificate, error) {
		if h.ServerName == "cb.test" {
			return &cert, nil
		}
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if _, err := dial(addr, &ctls.Config{ServerName: "cb.test", RootCAs: ca.pool()}); err != nil {
		t.Error(err)
	}
	if _, err := dial(addr, &ctls.Config{ServerName: "x.test", InsecureSkipVerify: true}); err == nil {
		t.Error("handshake without a certificate succeeded")
	}
}

func TestOCSPStaple(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "c", "c", []string{"h.test"}, "ecdsa")
	cf.OCSPFile = filepath.Join(dir, "c.ocsp")
	staple := []byte{0x30, 0x03, 0x0a, 0x01, 0x00} // any DER; clients check it, we only staple
	if err := os.WriteFile(cf.OCSPFile, staple, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := New(Options{Certificates: []CertFile{cf}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := dial(serve(t, cfg), &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
	if err != nil {
		t.Fatal(err)
	}
	if string(st.OCSPResponse) != string(staple) {
		t.Errorf("stapled %x, want %x", st.OCSPResponse, staple)
	}
	if err := os.WriteFile(cf.OCSPFile, []byte("not der"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Reload(); err == nil {
		t.Error("Reload accepted a file that is not DER")
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "srv", "srv", []string{"h.test"}, "ecdsa")
	caFile := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := ctls.X509KeyPair(ca.issue(t, "alice", nil, "ecdsa", true))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ctls.X509KeyPair(other.issue(t, "mallory", nil, "ecdsa", true))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []ctls.ClientAuthType{ctls.RequireAndVerifyClientCert, ctls.VerifyClientCertIfGiven} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := New(Options{Certificates: []CertFile{cf}, ClientAuth: mode, ClientCAFile: caFile})
			if err != nil {
				t.Fatal(err)
			}
			states := make(chan ctls.ConnectionState, 1)
			addr := serveStates(t, cfg, states)
			cc := func(certs ...ctls.Certificate) *ctls.Config {
				return &ctls.Config{ServerName: "h.test", RootCAs: ca.pool(), Certificates: certs}
			}
			if _, err := dial(addr, cc(good)); err != nil {
				t.Fatal(err)
			}
			st := <-states
			if len(st.VerifiedChains) == 0 || st.PeerCertificates[0].Subject.CommonName != "alice" {
				t.Errorf("peer %v chains %d", st.PeerCertificates, len(st.VerifiedChains))
			}
			if _, err := dial(addr, cc(bad)); err == nil {
				t.Error("a certificate from another CA was accepted")
			}
			_, err = dial(addr, cc())
			if err == nil {
				<-states
			}
			if mode == ctls.RequireAndVerifyClientCert && err == nil {
				t.Error("a client without a certificate was accepted")
			}
			if mode == ctls.VerifyClientCertIfGiven && err != nil {
				t.Errorf("a client without a certificate was refused: %v", err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cf := ca.file(t, dir, "c", "c", []string{"h.test"}, "ecdsa")
	other := ca.file(t, dir, "o", "o", []string{"o.test"}, "ecdsa")
	mismatched := CertFile{CertFile: cf.CertFile, KeyFile: other.KeyFile}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing to serve", Options{}, "Options.Certificates is empty"},
		{"missing key", Options{Certificates: []CertFile{{CertFile: cf.CertFile}}}, "CertFile and KeyFile"},
		{"missing file", Options{Certificates: []CertFile{{CertFile: filepath.Join(dir, "nope"), KeyFile: cf.KeyFile}}}, "no such file"},
		{"key does not match", Options{Certificates: []CertFile{mismatched}}, "Certificates[0]"},
		{"TLS 1.1", Options{Certificates: []CertFile{cf}, MinVersion: ctls.VersionTLS11}, "MinVersion"},
		{"verify without CA", Options{Certificates: []CertFile{cf}, ClientAuth: ctls.RequireAndVerifyClientCert}, "ClientCAFile"},
		{"bad ALPN", Options{Certificates: []CertFile{cf}, ALPN: []string{""}}, "ALPN"},
		{"tickets off with key file", Options{Certificates: []CertFile{cf}, DisableSessionTickets: true, TicketKeyFile: "k"}, "TicketKeyFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestFIPS checks the settings refused in FIPS 140-3 mode. Run the package's tests with
// GODEBUG=fips140=on to cover that mode; without it, the same settings are accepted.
func TestFIPS(t *testing.T) {
	ca := newTestCA(t)
	cf := ca.file(t, t.TempDir(), "c", "c", []string{"h.test"}, "ecdsa")
	tests := []struct {
		name string
		opts Options
	}{
		{"X25519 alone", Options{Curves: []ctls.CurveID{ctls.X25519}}},
		{"ChaCha20-Poly1305", Options{CipherSuites: []uint16{ctls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Certificates = []CertFile{cf}
			_, err := New(tt.opts)
			if fips140.Enabled() {
				if !errors.Is(err, ErrNotFIPSApproved) {
					t.Errorf("New in FIPS mode: %v, want ErrNotFIPSApproved", err)
				}
			} else if err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
	t.Run("default curves", func(t *testing.T) {
		cs := DefaultCurves()
		if cs[0] != ctls.X25519MLKEM768 {
			t.Errorf("DefaultCurves()[0] = %v", cs[0])
		}
		for _, c := range cs {
			if fips140.Enabled() && !fipsCurve(c) {
				t.Errorf("DefaultCurves has %v in FIPS mode", c)
			}
		}
	})
	t.Run("approved handshake", func(t *testing.T) {
		cfg, err := New(Options{Certificates: []CertFile{cf}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := dial(serve(t, cfg), &ctls.Config{ServerName: "h.test", RootCAs: ca.pool()})
		if err != nil {
			t.Fatal(err)
		}
		if st.CurveID != ctls.X25519MLKEM768 {
			t.Errorf("group %v", st.CurveID)
		}
	})
}
