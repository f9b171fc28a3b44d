package prometheus_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// tap is Metrics that signals the events a test waits for: a request's end (which
// may come after its client has the response), a client connection's close, a
// failed TLS handshake.
type tap struct {
	*prometheus.Metrics
	opened                     atomic.Int64
	ended, closed, tlsFailures chan struct{}
}

func newTap(m *prometheus.Metrics) *tap {
	return &tap{Metrics: m, ended: make(chan struct{}, 100), closed: make(chan struct{}, 100),
		tlsFailures: make(chan struct{}, 100)}
}

func (t *tap) RequestEnd(r *observe.Request) {
	t.Metrics.RequestEnd(r)
	t.ended <- struct{}{}
}

func (t *tap) ConnOpen(c *observe.Conn) {
	t.opened.Add(1)
	t.Metrics.ConnOpen(c)
}

func (t *tap) ConnClose(c *observe.Conn) {
	t.Metrics.ConnClose(c)
	t.closed <- struct{}{}
}

func (t *tap) ConnTLS(c *observe.Conn) {
	t.Metrics.ConnTLS(c)
	if c.Err != nil {
		t.tlsFailures <- struct{}{}
	}
}

// wait receives n values from ch, failing the test if they take more than 10s.
func wait(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited 10s for %s: %d of %d came", what, i, n)
		}
	}
}

// e2eCtx is the per-request state of e2eProxy.
type e2eCtx struct {
	pick  lb.Pick[*proxy.Peer]
	tries int
}

// e2eProxy routes by path: /dead to the "dead" balancer, whose only backend refuses
// connections (and is not retried); /retry first to the refusing address, then, on
// the retry, to the origin; everything else to the "origin" balancer.
type e2eProxy struct {
	proxy.Phases[*e2eCtx]
	origin, dead *lb.LoadBalancer[*proxy.Peer]
	deadPeer     *proxy.Peer
}

func (*e2eProxy) NewCtx() *e2eCtx { return &e2eCtx{} }

func (p *e2eProxy) UpstreamPeer(_ context.Context, s *proxy.Session, c *e2eCtx) (*proxy.Peer, error) {
	c.tries++
	bal := p.origin
	switch s.Request().Path() {
	case "/dead":
		bal = p.dead
	case "/retry":
		if c.tries == 1 {
			return p.deadPeer, nil
		}
	}
	pick, err := bal.Select("", nil)
	if err != nil {
		return nil, err
	}
	c.pick = pick
	return pick.Value(), nil
}

func (*e2eProxy) FailToConnect(_ context.Context, s *proxy.Session, c *e2eCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	c.pick.Done(lb.ConnectFailure)
	c.pick = lb.Pick[*proxy.Peer]{}
	if s.Request().Path() == "/dead" {
		err.Retry = false
	}
	return err
}

func (*e2eProxy) Logging(_ context.Context, _ *proxy.Session, c *e2eCtx, err error) {
	if err != nil {
		c.pick.Done(lb.ConnectFailure)
	} else {
		c.pick.Done(lb.Success)
	}
}

// deadAddr returns a loopback address that refuses connections.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestProxy runs a known mix of requests through a real proxy service, over
// HTTP/1.1 in clear text and over TLS, HTTP/2 over TLS and h2c, scrapes the metrics over
// HTTP and checks every count.
func TestProxy(t *testing.T) {
	m, err := prometheus.New(prometheus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obs := newTap(m)

	arrived, release := make(chan struct{}), make(chan struct{})
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/slow":
			arrived <- struct{}{}
			<-release
			io.WriteString(w, "slow")
		default:
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, "ok "+string(b))
		}
	}))
	dead := deadAddr(t)
	attach := func(b lb.Backend) *proxy.Peer {
		p, err := proxy.NewPeer(b.Addr)
		if err != nil {
			panic(err)
		}
		return p
	}
	originLB, err := lb.New(lb.Options[*proxy.Peer]{Name: "origin", Backends: []lb.Backend{{Addr: origin.Addr, Weight: 3}},
		Attach: attach, Observers: []observe.HealthObserver{m}})
	if err != nil {
		t.Fatal(err)
	}
	deadLB, err := lb.New(lb.Options[*proxy.Peer]{Name: "dead", Backends: []lb.Backend{{Addr: dead}}, Attach: attach,
		Outlier:   lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: time.Hour},
		Observers: []observe.HealthObserver{m}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []observe.Balancer{originLB, deadLB} {
		if err := m.AddBalancer(b); err != nil {
			t.Fatal(err)
		}
	}

	svc := proxytest.NewService(t, "edge", &e2eProxy{origin: originLB, dead: deadLB, deadPeer: attach(lb.Backend{Addr: dead})},
		proxy.ServiceOptions{Observers: []observe.Observer{obs}, Logger: slog.New(slog.DiscardHandler)})
	cert := proxytest.NewCert(t)
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP(plainLn.Addr().String())
	svc.AddTLS(tlsLn.Addr().String(), cert.Config)
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{plainLn, tlsLn}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	plain, secure := "http://"+plainLn.Addr().String(), "https://"+tlsLn.Addr().String()

	h1 := &http.Transport{}
	h1tls := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.RootCAs, MaxVersion: tls.VersionTLS12}}
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.RootCAs, NextProtos: []string{"h2"}}, ForceAttemptHTTP2: true}
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer func() {
		for _, tr := range []*http.Transport{h1, h1tls, h2, h2c} {
			tr.CloseIdleConnections()
		}
	}()
	var bodyBytes int64
	do := func(tr *http.Transport, method, url, body string, wantStatus int, wantProto string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body = nil
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		if resp.StatusCode != wantStatus || resp.Proto != wantProto {
			t.Fatalf("%s %s: %s %s, want %d %s", method, url, resp.Proto, resp.Status, wantStatus, wantProto)
		}
		bodyBytes += int64(len(b))
		wait(t, obs.ended, 1, "RequestEnd")
	}
	do(h1, "GET", plain+"/ok", "", 200, "HTTP/1.1")
	do(h1, "GET", plain+"/missing", "", 404, "HTTP/1.1")
	do(h1, "GET", plain+"/dead", "", 502, "HTTP/1.1")
	do(h1, "GET", plain+"/retry", "", 200, "HTTP/1.1")
	do(h1, "POST", plain+"/ok", "hello", 200, "HTTP/1.1")
	do(h2, "GET", secure+"/ok", "", 200, "HTTP/2.0")
	do(h2, "GET", secure+"/ok", "", 200, "HTTP/2.0")
	do(h1tls, "GET", secure+"/ok", "", 200, "HTTP/1.1")
	do(h2c, "GET", plain+"/ok", "", 200, "HTTP/2.0")

	// A TLS client that does not trust the certificate: a failed handshake.
	if c, err := tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{ServerName: "localhost"}); err == nil {
		c.Close()
		t.Fatal("a client without the root trusted the certificate")
	}
	wait(t, obs.tlsFailures, 1, "the failed handshake")

	// An HTTP/2 request held by the origin is in flight, as an open stream, and in
	// flight on its backend.
	slow := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: h2, Timeout: 10 * time.Second}).Get(secure + "/slow")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		slow <- err
	}()
	wait(t, arrived, 1, "the slow request at the origin")
	scrape(t, m).expect(map[string]float64{
		"gotthard_requests_in_flight{service=edge}":                                        1,
		"gotthard_http2_streams_open{service=edge}":                                        1,
		"gotthard_backend_in_flight_requests{balancer=origin,backend=" + origin.Addr + "}": 1,
	})
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	bodyBytes += int64(len("slow"))
	wait(t, obs.ended, 1, "RequestEnd of the slow request")

	for _, tr := range []*http.Transport{h1, h1tls, h2, h2c} {
		tr.CloseIdleConnections()
	}
	wait(t, obs.closed, int(obs.opened.Load()), "the client connections' close")

	refused := proxy.ConnectRefused.String() // the error type as the proxy names it
	f := scrape(t, m)
	f.expect(map[string]float64{
		"gotthard_requests_total{service=edge,method=GET,status_class=2xx}":                        7,
		"gotthard_requests_total{service=edge,method=GET,status_class=4xx}":                        1,
		"gotthard_requests_total{service=edge,method=GET,status_class=5xx}":                        1,
		"gotthard_requests_total{service=edge,method=POST,status_class=2xx}":                       1,
		"gotthard_request_duration_seconds{service=edge}":                                          10,
		"gotthard_upstream_ttfb_seconds{service=edge}":                                             9,
		"gotthard_requests_in_flight{service=edge}":                                                0,
		"gotthard_http2_streams_open{service=edge}":                                                0,
		"gotthard_connections_open{service=edge}":                                                  0,
		"gotthard_upstream_retries_total{service=edge}":                                            1,
		"gotthard_upstream_attempt_errors_total{service=edge,type=" + refused + "}":                2,
		"gotthard_request_errors_total{service=edge,source=upstream,type=" + refused + "}":         1,
		"gotthard_received_bytes_total{service=edge}":                                              5,
		"gotthard_sent_bytes_total{service=edge}":                                                  float64(bodyBytes),
		"gotthard_tls_handshakes_total{service=edge,version=1.3,group=X25519MLKEM768}":             1,
		"gotthard_tls_handshakes_total{service=edge,version=1.2,group=X25519}":                     1,
		"gotthard_tls_handshake_failures_total{service=edge}":                                      1,
		"gotthard_tls_handshake_duration_seconds{service=edge}":                                    2,
		"gotthard_upstream_connection_errors_total{service=edge}":                                  2,
		"gotthard_upstream_tls_handshake_duration_seconds{service=edge}":                           0,
		"gotthard_backend_up{balancer=origin,backend=" + origin.Addr + "}":                         1,
		"gotthard_backend_available{balancer=origin,backend=" + origin.Addr + "}":                  1,
		"gotthard_backend_weight{balancer=origin,backend=" + origin.Addr + "}":                     3,
		"gotthard_backend_in_flight_requests{balancer=origin,backend=" + origin.Addr + "}":         0,
		"gotthard_backend_ejected{balancer=dead,backend=" + dead + "}":                             1,
		"gotthard_backend_available{balancer=dead,backend=" + dead + "}":                           0,
		"gotthard_backend_health_changes_total{balancer=dead,backend=" + dead + ",cause=ejection}": 1,
	})
	// Every attempt is new or reused, as the pool counted them; each new one is a new
	// upstream connection, the two refused ones included.
	st := svc.PoolStats()
	newAttempts := f.value("gotthard_upstream_attempts_total", "service=edge,connection=new")
	reused := f.value("gotthard_upstream_attempts_total", "service=edge,connection=reused")
	if newAttempts+reused != 11 || reused != float64(st.Reused) || newAttempts < 3 {
		t.Errorf("attempts: %v new, %v reused; want 11 in all, %d reused as the pool says", newAttempts, reused, st.Reused)
	}
	if got := f.value("gotthard_upstream_connections_total", "service=edge"); got != newAttempts {
		t.Errorf("%v upstream connections, want one per new attempt (%v)", got, newAttempts)
	}
	if got := f.value("gotthard_upstream_connect_duration_seconds", "service=edge"); got != newAttempts-2 {
		t.Errorf("%v connect durations, want one per connection made (%v)", got, newAttempts-2)
	}
	if n := f.count("gotthard_requests_total"); n != 4 {
		t.Errorf("%d request series, want 4:\n%s", n, f.series("gotthard_requests_total"))
	}
}
