package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// misspelt has methods one slip away from phases; they must be reported.
type misspelt struct{ fixedProxy }

func (misspelt) RequestFiltr(context.Context, *Session, *testCtx) (Result, error) {
	return Handled, nil
}
func (*misspelt) ResponsFilter(context.Context, *Session, *testCtx, *message.ResponseHeader) error {
	return nil
}
func (misspelt) Upstreampeer()                                     {}
func (misspelt) UpstreamPeers()                                    {}
func (misspelt) REQUESTFILTER()                                    {}
func (misspelt) Loggings()                                         {}
func (misspelt) Loging(context.Context, *Session, *testCtx, error) {}

// wellSpelt has a real phase and exported methods far from any phase name.
type wellSpelt struct{ fixedProxy }

func (wellSpelt) RequestFilter(context.Context, *Session, *testCtx) (Result, error) {
	return Continue, nil
}
func (wellSpelt) Reload() error    { return nil }
func (wellSpelt) Routes() []string { return nil }

// Login is two edits from Logging but takes no *Session: a helper, not a slip.
func (wellSpelt) Login(user string) error { return nil }

func TestCheckPhases(t *testing.T) {
	tests := []struct {
		name string
		app  any
		want []string // substrings of the error; nil means no error
	}{
		{name: "phases only", app: fixedProxy{}},
		{name: "other methods", app: &wellSpelt{}},
		{name: "misspelt pointer", app: &misspelt{}, want: []string{
			"RequestFiltr (RequestFilter?)", "ResponsFilter (ResponseFilter?)",
			"Upstreampeer (UpstreamPeer?)", "UpstreamPeers (UpstreamPeer?)",
			"REQUESTFILTER (RequestFilter?)", "Loggings (Logging?)", "Loging (Logging?)", "*proxy.misspelt"}},
		// A value's check includes the pointer's methods (ResponsFilter).
		{name: "misspelt value", app: misspelt{}, want: []string{"ResponsFilter (ResponseFilter?)", "RequestFiltr (RequestFilter?)"}},
		{name: "nil", app: nil, want: []string{"nil app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPhases(tt.app)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckPhases = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckPhases = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckPhases = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestClosePhase(t *testing.T) {
	phases := phaseNames()
	for _, tt := range []struct {
		name, want string
		dist       int
	}{
		{"RequestFiltr", "RequestFilter", 1},
		{"Upstreampeer", "UpstreamPeer", 0},
		{"UpstreamPeers", "UpstreamPeer", 0},
		{"ResponseFilters", "ResponseFilter", 0},
		{"FailToConect", "FailToConnect", 1},
		{"NewCtxs", "NewCtx", 0},
		{"Login", "Logging", 2},
		{"Reload", "", 3},
		{"ServeHTTP", "", 3},
		{"Close", "", 3},
	} {
		got, d := closePhase(tt.name, phases)
		if d > 2 {
			got = ""
		}
		if got != tt.want || d != tt.dist {
			t.Errorf("closePhase(%q) = %q, %d, want %q, %d", tt.name, got, d, tt.want, tt.dist)
		}
	}
}

// writeCert writes a self-signed certificate valid from notBefore to notAfter and its key
// into dir, and returns their files.
func writeCert(t *testing.T, dir string, notBefore, notAfter time.Time) gtls.CertFile {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "old.example"},
		DNSNames:     []string{"old.example"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf := gtls.CertFile{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	writeFile(t, cf.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, cf.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return cf
}

func TestServiceCheck(t *testing.T) {
	now := time.Now()
	good, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{writeCert(t, t.TempDir(), now.Add(-time.Hour), now.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := gtls.New(gtls.Options{Name: "old", Certificates: []gtls.CertFile{writeCert(t, t.TempDir(), now.Add(-48*time.Hour), now.Add(-24*time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	h3only, err := gtls.New(gtls.Options{Name: "h3", ALPN: []string{"h3"}, Certificates: []gtls.CertFile{writeCert(t, t.TempDir(), now.Add(-time.Hour), now.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		app   ProxyHTTP[*testCtx]
		opts  ServiceOptions
		setup func(s *Service[*testCtx])
		want  []string
	}{
		{name: "good", app: fixedProxy{}, setup: func(s *Service[*testCtx]) {
			s.AddTCP("127.0.0.1:0")
			s.AddTLS("127.0.0.1:0", good)
			s.AddUnix(filepath.Join(t.TempDir(), "s.sock"))
		}},
		{name: "no endpoints", app: fixedProxy{}, setup: func(*Service[*testCtx]) {}, want: []string{"proxy: no endpoints"}},
		{name: "bad address", app: fixedProxy{}, setup: func(s *Service[*testCtx]) { s.AddTCP("6188") },
			want: []string{`proxy: endpoint "6188": address 6188: missing port in address`}},
		{name: "expired certificate", app: fixedProxy{}, setup: func(s *Service[*testCtx]) { s.AddTLS("127.0.0.1:8443", expired) },
			want: []string{`proxy: TLS endpoint 127.0.0.1:8443 (tls "old"): certificate for old.example expired at`}},
		{name: "alpn", app: fixedProxy{}, setup: func(s *Service[*testCtx]) { s.AddTLS("127.0.0.1:8443", h3only) },
			want: []string{`ALPN offers ["h3"], none of which the proxy speaks`}},
		{name: "misspelt phase", app: &misspelt{}, setup: func(s *Service[*testCtx]) { s.AddTCP("127.0.0.1:0") },
			want: []string{"RequestFiltr (RequestFilter?)"}},
		{name: "several", app: &misspelt{}, setup: func(*Service[*testCtx]) {},
			want: []string{"no endpoints", "RequestFiltr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := NewService("check", tt.app, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			tt.setup(svc)
			err = svc.Check()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
