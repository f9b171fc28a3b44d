package httplimit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

type gwCtx struct{ release func() }

// gateway limits requests in its RequestFilter with a Filter and releases in Logging.
type gateway struct {
	proxy.Phases[*gwCtx]
	peer   *proxy.Peer
	limits *Filter
}

func (*gateway) NewCtx() *gwCtx { return &gwCtx{} }

func (g *gateway) UpstreamPeer(context.Context, *proxy.Session, *gwCtx) (*proxy.Peer, error) {
	return g.peer, nil
}

func (g *gateway) RequestFilter(ctx context.Context, s *proxy.Session, c *gwCtx) (proxy.Result, error) {
	res, release, err := g.limits.Check(ctx, s)
	c.release = release
	return res, err
}

func (g *gateway) Logging(_ context.Context, _ *proxy.Session, c *gwCtx, _ error) {
	if c.release != nil {
		c.release()
	}
}

// protocols are the client sides an end-to-end test runs over.
var protocols = []string{"h1", "h2c", "h2"}

// serve starts a service for app over proto and returns a client and the base URL.
func serve[C any](t *testing.T, proto string, app proxy.ProxyHTTP[C], opts proxy.ServiceOptions) (*http.Client, string) {
	t.Helper()
	svc := proxytest.NewService(t, "gw", app, opts)
	switch proto {
	case "h2":
		cert := proxytest.NewCert(t)
		svc.AddTLS("127.0.0.1:0", cert.Config)
		return proxytest.H2Client(t, cert), "https://" + proxytest.Serve(t, svc)
	case "h2c":
		return proxytest.H2CClient(t), "http://" + proxytest.Serve(t, svc)
	}
	return proxytest.H1Client(t, nil), "http://" + proxytest.Serve(t, svc)
}

type answer struct {
	status     int
	retryAfter string
	body       string
}

func get(t *testing.T, cl *http.Client, url string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 429 && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("429 with Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b)}
}

// TestRateEndToEnd: through a real proxy whose RequestFilter uses a Filter, requests
// past a token bucket's burst get 429 with Retry-After and never reach the origin; the
// others do.
func TestRateEndToEnd(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			var hits atomic.Int64
			origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				io.WriteString(w, "origin")
			}))
			tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 0.001, Burst: 3})
			if err != nil {
				t.Fatal(err)
			}
			f, err := New(Options{Limiter: tb})
			if err != nil {
				t.Fatal(err)
			}
			cl, base := serve(t, proto, &gateway{peer: origin.Peer(), limits: f}, proxy.ServiceOptions{})
			for i := range 5 {
				got := get(t, cl, base+"/")
				want := answer{200, "", "origin"}
				if i >= 3 {
					want = answer{429, "1000", "too many requests\n"}
				}
				if got != want {
					t.Fatalf("request %d: %+v, want %+v", i, got, want)
				}
			}
			if n := hits.Load(); n != 3 {
				t.Fatalf("the origin saw %d requests, want 3", n)
			}
		})
	}
}

// signalLimiter tells when a slot is given back.
type signalLimiter struct {
	limit.Limiter
	released chan struct{}
}

func (l signalLimiter) Limit(ctx context.Context, key string) (limit.Decision, error) {
	d, err := l.Limiter.Limit(ctx, key)
	if d.Release != nil {
		inner := d.Release
		d.Release = func() { inner(); l.released <- struct{}{} }
	}
	return d, err
}

// TestInFlightEndToEnd: an in-flight limit of 1, as a RequestFilter (released in
// Logging) and as a module: while one request runs at the origin, another gets 429;
// when the first ends, its slot is free again.
func TestInFlightEndToEnd(t *testing.T) {
	for _, how := range []string{"filter", "module"} {
		for _, proto := range protocols {
			t.Run(how+"/"+proto, func(t *testing.T) {
				arrived, proceed := make(chan struct{}, 1), make(chan struct{})
				letGo := sync.OnceFunc(func() { close(proceed) })
				origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/slow" {
						arrived <- struct{}{}
						<-proceed
					}
					io.WriteString(w, "origin")
				}))
				fl, err := limit.NewInFlight(limit.InFlightOptions{Limit: 1, RetryAfter: 1500 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				sl := signalLimiter{Limiter: fl, released: make(chan struct{}, 4)}
				f, err := New(Options{Limiter: sl})
				if err != nil {
					t.Fatal(err)
				}
				var cl *http.Client
				var base string
				defer letGo() // a failure must not leave the origin waiting
				mod := &countingModule{Filter: f}
				if how == "module" {
					app := proxytest.FixedPeer{Peer: origin.Peer()}
					cl, base = serve(t, proto, app, proxy.ServiceOptions{Modules: []proxy.Module{mod}})
				} else {
					cl, base = serve(t, proto, &gateway{peer: origin.Peer(), limits: f}, proxy.ServiceOptions{})
				}
				first := make(chan answer, 1)
				go func() {
					resp, err := cl.Get(base + "/slow")
					if err != nil {
						first <- answer{body: err.Error()}
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					first <- answer{status: resp.StatusCode, body: string(b)}
				}()
				select {
				case <-arrived:
				case <-time.After(10 * time.Second):
					t.Fatal("the first request did not reach the origin")
				}
				second := get(t, cl, base+"/")
				if how == "module" && mod.n.Load() == 0 {
					t.Fatal("the proxy did not run the module")
				}
				if got, want := second, (answer{429, "2", "too many requests\n"}); got != want {
					t.Fatalf("second request while the first runs: %+v, want %+v", got, want)
				}
				letGo()
				if got := <-first; got.status != 200 || got.body != "origin" {
					t.Fatalf("first request: %+v", got)
				}
				select {
				case <-sl.released:
				case <-time.After(10 * time.Second):
					t.Fatal("the first request's slot was not given back")
				}
				if got := get(t, cl, base+"/"); got.status != 200 {
					t.Fatalf("request after the first ended: %+v", got)
				}
				<-sl.released
				if fl.Len() != 0 {
					t.Fatalf("%d keys still held", fl.Len())
				}
			})
		}
	}
}

// countingModule counts the requests the proxy gave the module.
type countingModule struct {
	*Filter
	n atomic.Int64
}

func (m *countingModule) NewRequest(s *proxy.Session) proxy.ModuleRequest {
	m.n.Add(1)
	return m.Filter.NewRequest(s)
}

// TestHeaderKey: a Filter keyed by a header limits each value on its own and lets
// requests without it through.
func TestHeaderKey(t *testing.T) {
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin")
	}))
	tb, err := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Options{Limiter: tb, Key: Header("X-Api-Key"), Status: 503, Body: "slow down"})
	if err != nil {
		t.Fatal(err)
	}
	cl, base := serve(t, "h1", &gateway{peer: origin.Peer(), limits: f}, proxy.ServiceOptions{})
	for _, c := range []struct {
		key    string
		status int
	}{{"a", 200}, {"a", 503}, {"b", 200}, {"", 200}, {"", 200}, {"b", 503}} {
		var got answer
		if c.key == "" {
			got = get(t, cl, base+"/")
		} else {
			got = get(t, cl, base+"/", "X-Api-Key", c.key)
		}
		if got.status != c.status {
			t.Fatalf("key %q: %+v, want status %d", c.key, got, c.status)
		}
		if c.status == 503 && (got.body != "slow down" || got.retryAfter != "1000") {
			t.Fatalf("key %q: %+v", c.key, got)
		}
	}
}

// errLimiter cannot decide.
type errLimiter struct{}

func (errLimiter) Limit(context.Context, string) (limit.Decision, error) {
	return limit.Decision{}, context.DeadlineExceeded
}

func TestNewAndHelpers(t *testing.T) {
	tb, _ := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 1})
	for _, c := range []struct {
		opts  Options
		field string
	}{
		{Options{}, "Options.Limiter"},
		{Options{Limiter: tb, Status: 200}, "Options.Status"},
		{Options{Limiter: tb, Status: 600}, "Options.Status"},
	} {
		_, err := New(c.opts)
		if err == nil || !errors.Is(err, limit.ErrOption) || strings.Count(err.Error(), c.field) != 1 {
			t.Fatalf("New(%+v): %v, want an error naming %s once", c.opts, err, c.field)
		}
	}
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", time.Second + 1: "2", 90 * time.Second: "90"} {
		if got := RetryAfter(d); got != want {
			t.Fatalf("RetryAfter(%v) = %q, want %q", d, got, want)
		}
	}
	f, err := New(Options{Limiter: errLimiter{}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "limit" {
		t.Fatalf("Name %q", f.Name())
	}
	failed := make(chan error, 1)
	origin := proxytest.NewOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin") }))
	app := &errGateway{gateway: gateway{peer: origin.Peer(), limits: f}, failed: failed}
	cl, base := serve(t, "h1", app, proxy.ServiceOptions{})
	if got := get(t, cl, base+"/"); got.status < 500 {
		t.Fatalf("a limiter's error let the request through: %+v", got)
	}
	select { // Logging runs after the response
	case err := <-failed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the request ended with %v, want the limiter's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Logging within 10s")
	}
}

type errGateway struct {
	gateway
	failed chan error
}

func (g *errGateway) Logging(_ context.Context, _ *proxy.Session, _ *gwCtx, err error) {
	g.failed <- err
}
