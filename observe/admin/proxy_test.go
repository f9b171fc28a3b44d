package admin_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/proxy"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// balancedProxy sends each request to a backend of a load balancer, with failover.
type balancedProxy struct {
	proxy.Phases[*balancedCtx]
	lb *lb.LoadBalancer[*proxy.Peer]
}

type balancedCtx struct{ failover lb.Failover[*proxy.Peer] }

func (*balancedProxy) NewCtx() *balancedCtx { return &balancedCtx{} }

func (p *balancedProxy) UpstreamPeer(_ context.Context, _ *proxy.Session, c *balancedCtx) (*proxy.Peer, error) {
	return c.failover.Select(p.lb, "")
}

func (*balancedProxy) FailToConnect(_ context.Context, _ *proxy.Session, c *balancedCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	err.Retry = c.failover.FailToConnect(err, err.Retry)
	return err
}

func (*balancedProxy) Logging(_ context.Context, s *proxy.Session, c *balancedCtx, err error) {
	c.failover.Done(s.Status(), err)
}

// signal is an observer placed after the Stats: it reports each request's end and
// each client connection's close, once Stats has counted them.
type signal struct {
	observe.Base
	requests chan struct{}
	closes   chan struct{}
}

func newSignal() *signal {
	return &signal{requests: make(chan struct{}, 1<<16), closes: make(chan struct{}, 1<<10)}
}

func (s *signal) RequestEnd(*observe.Request) { s.requests <- struct{}{} }
func (s *signal) ConnOpen(*observe.Conn)      {}
func (s *signal) ConnTLS(*observe.Conn)       {}
func (s *signal) ConnClose(*observe.Conn)     { s.closes <- struct{}{} }
func (s *signal) UpstreamConn(*observe.Conn)  {}
func (s *signal) wait(t *testing.T, c chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for i := range n {
		select {
		case <-c:
		case <-deadline.C:
			t.Fatalf("%d of %d %s after 10s", i, n, what)
		}
	}
}

// healthFunc is an observe.HealthObserver.
type healthFunc func(observe.Health)

func (f healthFunc) HealthChange(h observe.Health) { f(h) }

// gateway is a proxy with Stats in front of a live origin and a dead backend behind a
// balancer with active health checks, and the admin service over it.
type gateway struct {
	stats            *admin.Stats
	metrics          *prometheus.Metrics // beside Stats, for /metrics
	signal           *signal
	origin, dead     string // backend addresses
	plain, tlsAddr   string // the proxy's listeners
	adminBase, token string
	cert             *tls.Certificate
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{stats: admin.NewStats(), signal: newSignal(), token: "s3cret"}
	var err error
	if g.metrics, err = prometheus.New(prometheus.Options{}); err != nil {
		t.Fatal(err)
	}

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello from the origin")
	}))
	t.Cleanup(origin.Close)
	g.origin = origin.Listener.Addr().String()
	// A backend that refuses connections: a port that was just freed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.dead = ln.Addr().String()
	ln.Close()

	down := make(chan struct{})
	var once sync.Once
	bal, err := lb.New(lb.Options[*proxy.Peer]{
		Name:      "origins",
		Algorithm: lb.PeakEWMA, // the balancer that keeps a latency per backend
		Backends:  []lb.Backend{{Addr: g.origin}, {Addr: g.dead}},
		Attach: func(b lb.Backend) *proxy.Peer {
			p, err := proxy.NewPeer(b.Addr)
			if err != nil {
				panic(err) // the addresses above are valid
			}
			return p
		},
		HealthCheck: &lb.HealthCheck{Interval: 100 * time.Millisecond, Rise: 1, Fall: 1},
		Logger:      slog.New(slog.DiscardHandler),
		Observers: []observe.HealthObserver{g.stats, healthFunc(func(h observe.Health) {
			if h.Backend == g.dead && !h.Healthy {
				once.Do(func() { close(down) })
			}
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	lbCtx, stopLB := context.WithCancel(context.Background())
	lbDone := make(chan error, 1)
	go func() { lbDone <- bal.Run(lbCtx) }()
	t.Cleanup(func() {
		stopLB()
		if err := <-lbDone; err != nil {
			t.Errorf("lb Run: %v", err)
		}
	})
	select {
	case <-down:
	case <-time.After(10 * time.Second):
		t.Fatal("the dead backend was not marked down within 10s")
	}

	svc, err := proxy.NewService("gateway", &balancedProxy{lb: bal}, proxy.ServiceOptions{
		Observers: []observe.Observer{g.metrics, g.stats, g.signal},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	g.cert = &cert
	tcfg, err := gtls.New(gtls.Options{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		ALPN:           []string{"h2", "http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.plain, g.tlsAddr = plain.Addr().String(), tlsLn.Addr().String()
	svc.AddTCP(g.plain)
	svc.AddTLS(g.tlsAddr, tcfg)
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{plain, tlsLn}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-served; err != nil {
			t.Errorf("proxy Serve: %v", err)
		}
	})

	_, g.adminBase = serve(t, admin.Options{
		Token:     g.token,
		Stats:     g.stats,
		Metrics:   g.metrics.Handler(),
		Balancers: []observe.Balancer{bal},
		Listeners: func() map[string][]string {
			return map[string][]string{"gateway": {g.plain, g.tlsAddr}}
		},
		Certificates: []admin.CertificateSource{{Name: "gateway-tls", Certificates: func() []*tls.Certificate {
			return []*tls.Certificate{g.cert}
		}}},
	})
	return g
}

// clients returns a client and base URL for each protocol the proxy speaks.
func (g *gateway) clients(t *testing.T) []struct {
	proto, base string
	c           *http.Client
} {
	var h2c, h2 http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2.SetHTTP2(true)
	h1Tr := &http.Transport{}
	h2cTr := &http.Transport{Protocols: &h2c}
	h2Tr := &http.Transport{Protocols: &h2, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	h1tlsTr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	for _, tr := range []*http.Transport{h1Tr, h2cTr, h2Tr, h1tlsTr} {
		t.Cleanup(tr.CloseIdleConnections)
	}
	c := func(tr *http.Transport) *http.Client { return &http.Client{Transport: tr, Timeout: 10 * time.Second} }
	return []struct {
		proto, base string
		c           *http.Client
	}{
		{"h1", "http://" + g.plain, c(h1Tr)},
		{"h2c", "http://" + g.plain, c(h2cTr)},
		{"h1-tls", "https://" + g.tlsAddr, c(h1tlsTr)},
		{"h2", "https://" + g.tlsAddr, c(h2Tr)},
	}
}

func do(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// The proxy feeds Stats; /status.json shows what went through it, over each protocol.
func TestProxyFeedsStats(t *testing.T) {
	for _, proto := range []string{"h1", "h2c", "h1-tls", "h2"} {
		t.Run(proto, func(t *testing.T) {
			g := startGateway(t)
			var cl *http.Client
			var base string
			for _, x := range g.clients(t) {
				if x.proto == proto {
					cl, base = x.c, x.base
				}
			}
			const n = 20
			for i := range n {
				path := "/hello"
				if i == n-1 {
					path = "/missing"
				}
				code, err := do(cl, base+path)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 404, false: 200}[path == "/missing"]; code != want {
					t.Fatalf("GET %s: %d, want %d", path, code, want)
				}
			}
			g.signal.wait(t, g.signal.requests, n, "requests ended")

			st := fetchStatus(t, g.adminBase, g.token)
			s := findService(t, st, "gateway")
			if s.RequestsTotal != n || s.ByClass["2xx"] != n-1 || s.ByClass["4xx"] != 1 || s.ErrorsTotal != 0 || s.InFlight != 0 {
				t.Errorf("counts: %+v", s)
			}
			if s.Connections != 1 || s.ConnectionsTotal != 1 {
				t.Errorf("connections %d open, %d total; want 1, 1 (one keep-alive client connection)", s.Connections, s.ConnectionsTotal)
			}
			if s.AttemptsReused+s.AttemptsNew != n || s.AttemptsReused < n-2 || s.ReuseRatio < 0.8 {
				t.Errorf("pool: %d reused, %d new, ratio %v", s.AttemptsReused, s.AttemptsNew, s.ReuseRatio)
			}
			if s.UpstreamConnections < 1 || s.RetriesTotal != 0 {
				t.Errorf("%d upstream connections, %d retries", s.UpstreamConnections, s.RetriesTotal)
			}
			if s.LatencySamples != n || s.P50ms <= 0 || s.P50ms > s.P99ms || s.RPS1m < 0 {
				t.Errorf("latency: %d samples, p50 %v, p99 %v", s.LatencySamples, s.P50ms, s.P99ms)
			}
			if want := uint64((n-1)*len("hello from the origin") + len("404 page not found\n")); s.BytesSent != want {
				t.Errorf("bytes_sent %d, want %d", s.BytesSent, want)
			}
			if !slices.Equal(s.Listeners, []string{g.plain, g.tlsAddr}) {
				t.Errorf("listeners %v", s.Listeners)
			}
			if len(st.Balancers) != 1 || len(st.Balancers[0].Backends) != 2 {
				t.Fatalf("balancers: %+v", st.Balancers)
			}
			for _, b := range st.Balancers[0].Backends {
				live := b.Addr == g.origin
				if b.Healthy != live || b.Available != live {
					t.Errorf("backend %+v: want healthy and available = %v", b, live)
				}
				if live && b.EWMAms <= 0 {
					t.Errorf("backend %s: ewma_ms %v, want > 0 after requests", b.Addr, b.EWMAms)
				}
			}
			if len(st.Certificates) != 1 || !slices.Contains(st.Certificates[0].SANs, "localhost") {
				t.Errorf("certificates: %+v", st.Certificates)
			}

			// /metrics serves the Prometheus adapter's count of the same requests, with
			// the token only.
			if resp, _ := get(t, client(t), g.adminBase+"/metrics", ""); resp.StatusCode != 401 {
				t.Errorf("/metrics without the token: %s", resp.Status)
			}
			resp, body := get(t, client(t), g.adminBase+"/metrics", "Bearer "+g.token)
			want := fmt.Sprintf(`gotthard_requests_total{method="GET",service="gateway",status_class="2xx"} %d`, n-1)
			if resp.StatusCode != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics: %s, want a line %s", resp.Status, want)
			}

			// The client leaves: its connection is counted closed.
			cl.Transport.(*http.Transport).CloseIdleConnections()
			g.signal.wait(t, g.signal.closes, 1, "client connections closed")
			if s := findService(t, fetchStatus(t, g.adminBase, g.token), "gateway"); s.Connections != 0 {
				t.Errorf("%d connections open after the client left", s.Connections)
			}
		})
	}
}

// The status page in a real browser while traffic flows through a real proxy, over
// every protocol at once.
func TestStatusPageProxy(t *testing.T) {
	chromium(t) // before the set-up: skip early
	g := startGateway(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, x := range g.clients(t) {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/hello"
				if i%25 == 24 {
					path = "/missing"
				}
				if _, err := do(x.c, x.base+path); err != nil {
					errs <- fmt.Errorf("%s: %w", x.proto, err)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()

	checkStatusPage(t, statusPageCheck{
		base: g.adminBase, token: g.token, service: "gateway", listener: g.plain + " " + g.tlsAddr,
		backends:   map[string]string{"origins/" + g.origin: "healthy", "origins/" + g.dead: "down"},
		certSource: "gateway-tls", healthEvent: g.dead,
	})
}
