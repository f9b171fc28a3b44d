package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// tlsOrigin is an HTTPS origin that reports, per request, what its TLS saw.
type tlsOrigin struct {
	addr  string
	conns atomic.Int64
	sni   atomic.Value // the server name of the last handshake
}

func startTLSOrigin(t testing.TB, p *pki, cn string, clientAuth tls.ClientAuthType) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	cert := p.keyPair(t, p.issue(t, cn, []string{cn}, false))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "-"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "resumed=%v group=%v client=%s alpn=%s", r.TLS.DidResume, r.TLS.CurveID, client, r.TLS.NegotiatedProtocol)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   clientAuth,
		ClientCAs:    p.pool(),
		NextProtos:   []string{"http/1.1"},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			o.sni.Store(h.ServerName)
			return nil, nil
		},
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o.addr = strings.TrimPrefix(srv.URL, "https://")
	return o
}

func TestUpstreamTLS(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	client := p.keyPair(t, p.issue(t, "gotthard", nil, true))
	origin := startTLSOrigin(t, p, "origin.test", tls.VerifyClientCertIfGiven)
	mtlsOrigin := startTLSOrigin(t, p, "mtls.test", tls.RequireAndVerifyClientCert)

	tests := []struct {
		name    string
		addr    string
		tls     PeerTLS
		status  int
		want    string // substring of the body
		wantSNI string
		noReuse bool
	}{
		{"verified by name", origin.addr, PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}, 200,
			"group=X25519MLKEM768 client=- alpn=http/1.1", "origin.test", false},
		{"wrong CA", origin.addr, PeerTLS{ServerName: "origin.test", RootCAs: other.pool()}, 502, "", "origin.test", false},
		{"wrong name", origin.addr, PeerTLS{ServerName: "else.test", RootCAs: p.pool()}, 502, "", "else.test", false},
		{"verify name differs from SNI", origin.addr, PeerTLS{ServerName: "front.test", VerifyName: "origin.test", RootCAs: p.pool()}, 200,
			"client=-", "front.test", false},
		{"no SNI", origin.addr, PeerTLS{NoSNI: true, VerifyName: "origin.test", RootCAs: p.pool()}, 200, "client=-", "", false},
		{"no SNI wrong name", origin.addr, PeerTLS{NoSNI: true, VerifyName: "x.test", RootCAs: p.pool()}, 502, "", "", false},
		{"skip verify", origin.addr, PeerTLS{ServerName: "else.test", InsecureSkipVerifyDangerous: true}, 200, "client=-", "else.test", false},
		{"no ALPN", origin.addr, PeerTLS{ServerName: "origin.test", RootCAs: p.pool(), ALPN: ALPNNone}, 200, "alpn= ", "origin.test", false},
		{"client certificate", mtlsOrigin.addr, PeerTLS{ServerName: "mtls.test", RootCAs: p.pool(), ClientCertificate: &client}, 200,
			"client=gotthard", "mtls.test", false},
		{"client certificate missing", mtlsOrigin.addr, PeerTLS{ServerName: "mtls.test", RootCAs: p.pool()}, 502, "", "mtls.test", false},
		{"resumption", origin.addr, PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}, 200, "resumed=true", "origin.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ServiceOptions{MaxRetries: -1}
			if tt.noReuse {
				opts.UpstreamKeepalivePoolSize = -1
			}
			pt := tt.tls
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: &Peer{Address: tt.addr, TLS: &pt}}, opts)
			addr := startProxy(t, svc)
			cl := testClient(t)
			var resp *http.Response
			var body string
			for range 2 { // the second request resumes when the connection is not reused
				resp, body = getBody(t, cl, "http://"+addr+"/")
			}
			if resp.StatusCode != tt.status || !strings.Contains(body+" ", tt.want) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.want)
			}
			if sni, _ := tlsOriginFor(tt.addr, origin, mtlsOrigin).sni.Load().(string); sni != tt.wantSNI {
				t.Errorf("origin saw SNI %q, want %q", sni, tt.wantSNI)
			}
		})
	}
}

func tlsOriginFor(addr string, os ...*tlsOrigin) *tlsOrigin {
	for _, o := range os {
		if o.addr == addr {
			return o
		}
	}
	return nil
}

// TestUpstreamTLSPoolKey checks that peers differing only in TLS settings do not share
// pooled connections.
func TestUpstreamTLSPoolKey(t *testing.T) {
	p := newPKI(t)
	client := p.keyPair(t, p.issue(t, "gotthard", nil, true))
	origin := startTLSOrigin(t, p, "origin.test", tls.VerifyClientCertIfGiven)
	a := &Peer{Address: origin.addr, TLS: &PeerTLS{ServerName: "origin.test", RootCAs: p.pool()}}
	b := &Peer{Address: origin.addr, TLS: &PeerTLS{ServerName: "origin.test", RootCAs: a.TLS.RootCAs, ClientCertificate: &client}}
	var which atomic.Int64
	app := switchProxy{peers: []*Peer{a, b, a, b}, next: &which}
	svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	cl := testClient(t)
	var bodies []string
	for range 4 {
		_, body := getBody(t, cl, "http://"+addr+"/")
		bodies = append(bodies, body)
	}
	for i, want := range []string{"client=-", "client=gotthard", "client=-", "client=gotthard"} {
		if !strings.Contains(bodies[i], want) {
			t.Errorf("request %d: %q, want %q", i, bodies[i], want)
		}
	}
	if st := svc.PoolStats(); st.New != 2 || st.Reused != 2 {
		t.Errorf("pool %+v, want 2 new and 2 reused", st)
	}
}

// switchProxy returns its peers in turn.
type switchProxy struct {
	Phases[*testCtx]
	peers []*Peer
	next  *atomic.Int64
}

func (switchProxy) NewCtx() *testCtx { return &testCtx{} }
func (p switchProxy) UpstreamPeer(contextT, *Session, *testCtx) (*Peer, error) {
	return p.peers[int(p.next.Add(1)-1)%len(p.peers)], nil
}
