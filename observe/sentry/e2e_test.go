package sentry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// e2eCtx is the per-request state of the test proxy.
type e2eCtx struct{}

// e2eProxy sends requests to its peer; a request to /panic makes its RequestFilter
// phase panic, and one to /dead goes to a peer that refuses connections.
type e2eProxy struct {
	proxy.Phases[*e2eCtx]
	origin, dead *proxy.Peer
}

func (*e2eProxy) NewCtx() *e2eCtx { return &e2eCtx{} }

func (p *e2eProxy) RequestFilter(_ context.Context, s *proxy.Session, _ *e2eCtx) (proxy.Result, error) {
	if p := s.Request().Path(); p == "/panic" {
		phasePanics(len(p))
	}
	return proxy.Continue, nil
}

// phasePanics is where the test proxy's phase panics: the innermost frame of the
// event's stack.
//
//go:noinline
func phasePanics(i int) int {
	a := []int{1}
	return a[i]
}

func (p *e2eProxy) UpstreamPeer(_ context.Context, s *proxy.Session, _ *e2eCtx) (*proxy.Peer, error) {
	if s.Request().Path() == "/dead" {
		return p.dead, nil
	}
	return p.origin, nil
}

// ends is an observer, placed after the Observer, that tells the test each time a
// request has ended: the service calls RequestEnd after writing the response, so the
// client's having it does not mean the observers saw it yet.
type ends struct {
	observe.Base
	c chan struct{}
}

func (e ends) RequestEnd(*observe.Request) { e.c <- struct{}{} }

// wait waits for n requests to have ended.
func (e ends) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for i := range n {
		select {
		case <-e.c:
		case <-deadline.C:
			t.Fatalf("%d of %d requests ended", i, n)
		}
	}
}

// e2e is a proxy service with an Observer, in front of an origin and a dead peer,
// served on loopback on a plain endpoint (HTTP/1.1, h2c) and a TLS one (HTTP/1.1, h2).
type e2e struct {
	obs     *Observer
	ends    ends
	tr      *transport
	addr    string // the plain endpoint
	tlsAddr string
	roots   *x509.CertPool // that trust the TLS endpoint's certificate
	dead    string
}

func startE2E(t *testing.T, opts Options) *e2e {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(origin.Close)
	// A port nothing listens on: the peer refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	op, err := proxy.NewPeer(strings.TrimPrefix(origin.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	dp, err := proxy.NewPeer(dead)
	if err != nil {
		t.Fatal(err)
	}
	obs, tr := newObserver(t, opts)
	end := ends{c: make(chan struct{}, 100)}
	svc, err := proxy.NewService("gateway", &e2eProxy{origin: op, dead: dp}, proxy.ServiceOptions{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observers: []observe.Observer{obs, end},
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, roots := selfSigned(t)
	cfg, err := gtls.New(gtls.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(pl.Addr().String())
	svc.AddTLS(sl.Addr().String(), cfg)
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{pl, sl}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &e2e{obs: obs, ends: end, tr: tr, addr: pl.Addr().String(), tlsAddr: sl.Addr().String(), roots: roots, dead: dead}
}

// selfSigned returns a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// protocol is a client protocol the end-to-end tests run over.
type protocol struct {
	name  string
	tls   bool
	set   func(*http.Protocols)
	proto string // as the Observer sees it
}

var protocols = []protocol{
	{"h1", false, func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1"},
	{"h2c", false, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, "HTTP/2"},
	{"h1+tls", true, func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1"},
	{"h2+tls", true, func(p *http.Protocols) { p.SetHTTP2(true) }, "HTTP/2"},
}

// base returns the URL of the endpoint that speaks p, without a path.
func (e *e2e) base(p protocol) string {
	if p.tls {
		return "https://" + e.tlsAddr
	}
	return "http://" + e.addr
}

// client returns a client that speaks p to e.
func (e *e2e) client(t *testing.T, p protocol) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), TLSClientConfig: &tls.Config{RootCAs: e.roots}}
	p.set(tr.Protocols)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// get sends one request with credentials in its header fields and query, and returns
// the status.
func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Cookie", "session=cookie-secret")
	req.Header.Set("Authorization", "Bearer auth-secret")
	req.Header.Set("Proxy-Authorization", "Basic proxy-secret")
	req.Header.Set("X-Api-Key", "apikey-secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestE2EPanic(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := startE2E(t, Options{})
			c := e.client(t, p)
			if st := get(t, c, e.base(p)+"/panic?token=q-secret"); st != 500 {
				t.Errorf("status %d; want 500", st)
			}
			e.ends.wait(t, 1)
			evs := flushed(t, e.obs, e.tr)
			if len(evs) != 1 {
				t.Fatalf("%d events; want 1", len(evs))
			}
			ev := evs[0]
			checkNoSecrets(t, ev)
			if ev.Level != sentrygo.LevelFatal || len(ev.Exception) != 1 {
				t.Fatalf("level %q, %d exceptions", ev.Level, len(ev.Exception))
			}
			ex := ev.Exception[0]
			if ex.Type != "panic" || ex.Value != "runtime error: index out of range [6] with length 1" {
				t.Errorf("exception %q: %q", ex.Type, ex.Value)
			}
			if ex.Stacktrace == nil || len(ex.Stacktrace.Frames) < 2 {
				t.Fatalf("stack trace %+v", ex.Stacktrace)
			}
			fs := ex.Stacktrace.Frames
			if fs[len(fs)-1].Function != "phasePanics" {
				t.Errorf("innermost frame %+v; want phasePanics", fs[len(fs)-1])
			}
			if !strings.HasSuffix(fs[len(fs)-2].Function, "RequestFilter") {
				t.Errorf("frame before it %+v; want the RequestFilter phase", fs[len(fs)-2])
			}
			if ev.Request.Method != "GET" || ev.Request.URL != e.base(p)+"/panic" {
				t.Errorf("request %s %s", ev.Request.Method, ev.Request.URL)
			}
			if ev.Tags["host"] != strings.TrimPrefix(strings.TrimPrefix(e.base(p), "https://"), "http://") || ev.Tags["service"] != "gateway" || ev.Tags["status"] != "500" {
				t.Errorf("tags %v", ev.Tags)
			}
			if ev.Tags["proto"] != p.proto {
				t.Errorf("proto %q; want %q", ev.Tags["proto"], p.proto)
			}
			if ev.Request.Headers["User-Agent"] != "curl/8.5.0" {
				t.Errorf("headers %v", ev.Request.Headers)
			}
		})
	}
}

func TestE2EDeadPeer(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := startE2E(t, Options{})
			c := e.client(t, p)
			if st := get(t, c, e.base(p)+"/dead"); st != 502 {
				t.Errorf("status %d; want 502", st)
			}
			e.ends.wait(t, 1)
			evs := flushed(t, e.obs, e.tr)
			if len(evs) != 1 {
				t.Fatalf("%d events; want 1", len(evs))
			}
			ev := evs[0]
			checkNoSecrets(t, ev)
			if ev.Level != sentrygo.LevelError || ev.Tags["status"] != "502" || ev.Tags["upstream"] != e.dead {
				t.Errorf("level %q tags %v; want error, 502, upstream %s", ev.Level, ev.Tags, e.dead)
			}
			if len(ev.Exception) != 1 || ev.Exception[0].Type != "connection refused" || ev.Tags["error.source"] != "upstream" {
				t.Errorf("exception %+v tags %v; want \"connection refused\" from upstream", ev.Exception, ev.Tags)
			}
		})
	}
}

func TestE2ENotReported(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := startE2E(t, Options{})
			c := e.client(t, p)
			for path, want := range map[string]int{"/": 200, "/missing": 404} {
				if st := get(t, c, e.base(p)+path); st != want {
					t.Errorf("%s: status %d; want %d", path, st, want)
				}
			}
			e.ends.wait(t, 2)
			if evs := flushed(t, e.obs, e.tr); len(evs) != 0 {
				t.Errorf("%d events; want none", len(evs))
			}
			if e.obs.Dropped() != 0 {
				t.Errorf("Dropped %d; want 0", e.obs.Dropped())
			}
		})
	}
}

func TestE2EBurst(t *testing.T) {
	e := startE2E(t, Options{EventsPerSecond: 1.0 / 3600, Burst: 3})
	c := e.client(t, protocols[0])
	for range 10 {
		if st := get(t, c, e.base(protocols[0])+"/dead"); st != 502 {
			t.Fatalf("status %d; want 502", st)
		}
	}
	e.ends.wait(t, 10)
	if evs := flushed(t, e.obs, e.tr); len(evs) != 3 {
		t.Errorf("%d events; want the burst, 3", len(evs))
	}
	if e.obs.Dropped() != 7 {
		t.Errorf("Dropped %d; want 7", e.obs.Dropped())
	}
}

// A server runs the Observer as a background service: when it stops, after the proxy
// has drained, Run flushes the events.
func TestE2EServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dp, err := proxy.NewPeer(dead)
	if err != nil {
		t.Fatal(err)
	}
	obs, tr := newObserver(t, Options{Name: "errors"})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := proxy.NewService("gateway", &e2eProxy{origin: dp, dead: dp}, proxy.ServiceOptions{
		Logger: logger, Observers: []observe.Observer{obs},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	srv, err := server.New(server.Options{Logger: logger, NoSignals: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []server.Service{svc, obs} {
		if err := srv.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan error, 1)
	go func() { ran <- srv.Run() }()
	select {
	case <-srv.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	}
	addr := srv.Addrs("gateway")[0].String()
	c := (&e2e{}).client(t, protocols[0])
	if st := get(t, c, "http://"+addr+"/"); st != 502 {
		t.Errorf("status %d; want 502", st)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Errorf("Run: %v", err)
	}
	if evs := tr.Events(); len(evs) != 1 {
		t.Errorf("%d events once the server stopped; want 1", len(evs))
	}
}
