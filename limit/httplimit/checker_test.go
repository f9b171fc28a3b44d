package httplimit

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// signalGateway is gateway (or, with no Filter, a plain proxy for a module) that tells
// when each request's Logging ran: after the module's Done, and after the gateway's
// release.
type signalGateway struct {
	gateway
	logged chan struct{}
}

func (g *signalGateway) RequestFilter(ctx context.Context, s *proxy.Session, c *gwCtx) (proxy.Result, error) {
	if g.limits == nil {
		return proxy.Continue, nil
	}
	return g.gateway.RequestFilter(ctx, s, c)
}

func (g *signalGateway) Logging(ctx context.Context, s *proxy.Session, c *gwCtx, err error) {
	g.gateway.Logging(ctx, s, c, err)
	g.logged <- struct{}{}
}

// TestCheckerEndToEnd: an InFlight, a limit.Checker, used directly as a module and from
// a RequestFilter: its slot is held under the client's IP address as ClientIP writes
// it (written by the Filter in a buffer of its own), a second request is refused while
// the first runs, and the slot comes back when the first ends.
func TestCheckerEndToEnd(t *testing.T) {
	for _, how := range []string{"filter", "module"} {
		for _, proto := range protocols {
			t.Run(how+"/"+proto, func(t *testing.T) {
				arrived, proceed := make(chan struct{}, 1), make(chan struct{})
				letGo := sync.OnceFunc(func() { close(proceed) })
				defer letGo()
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
				f, err := New(Options{Limiter: fl})
				if err != nil {
					t.Fatal(err)
				}
				app := &signalGateway{gateway: gateway{peer: origin.Peer()}, logged: make(chan struct{}, 4)}
				var opts proxy.ServiceOptions
				if how == "module" {
					opts.Modules = []proxy.Module{f}
				} else {
					app.limits = f
				}
				cl, base := serve(t, proto, app, opts)
				logged := func(what string) {
					t.Helper()
					select {
					case <-app.logged:
					case <-time.After(10 * time.Second):
						t.Fatalf("no Logging for %s within 10s", what)
					}
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
				if n := fl.Count("127.0.0.1"); n != 1 {
					t.Fatalf("count %d under the client's address while its request runs, want 1", n)
				}
				if got, want := get(t, cl, base+"/"), (answer{429, "2", "too many requests\n"}); got != want {
					t.Fatalf("second request while the first runs: %+v, want %+v", got, want)
				}
				logged("the refused request")
				letGo()
				if got := <-first; got.status != 200 || got.body != "origin" {
					t.Fatalf("first request: %+v", got)
				}
				logged("the first request")
				if n := fl.Len(); n != 0 {
					t.Fatalf("%d keys held after the first request ended", n)
				}
				if got := get(t, cl, base+"/"); got.status != 200 {
					t.Fatalf("request after the first ended: %+v", got)
				}
				logged("the third request")
				if n := fl.Len(); n != 0 {
					t.Fatalf("%d keys held after the third request ended", n)
				}
			})
		}
	}
}

// TestAppendIP: the key the Filter writes for a client is the one ClientIP returns.
func TestAppendIP(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "203.0.113.7", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1", "2001:db8:0:0:1:0:0:1", "::", "0.0.0.0"} {
		ip := net.ParseIP(s)
		for _, form := range []net.IP{ip, ip.To4()} {
			if form == nil {
				continue
			}
			if got, want := string(appendIP(nil, form)), form.String(); got != want {
				t.Fatalf("%s (%d bytes): %q, want %q", s, len(form), got, want)
			}
		}
	}
}
