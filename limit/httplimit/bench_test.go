package httplimit

import (
	"context"
	"testing"

	"github.com/gotthard-proxy/gotthard/limit"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// BenchmarkProxyGet times keep-alive GETs through a proxy without a limit, and with a
// Filter over a token bucket and over an in-flight limit in its RequestFilter (none
// refuses: the cost is the check's). Compare the sub-benchmarks of one run.
func BenchmarkProxyGet(b *testing.B) {
	peer := &proxy.Peer{Address: proxytest.NewRawOrigin(b, 1<<10)}
	tb, _ := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 1e9, Burst: 1 << 20})
	fl, _ := limit.NewInFlight(limit.InFlightOptions{Limit: 1 << 20})
	for _, c := range []struct {
		name string
		lim  limit.Limiter
	}{{"none", nil}, {"tokenbucket", tb}, {"inflight", fl}} {
		b.Run(c.name, func(b *testing.B) {
			var app proxy.ProxyHTTP[*gwCtx] = &plain{peer: peer}
			if c.lim != nil {
				f, err := New(Options{Limiter: c.lim})
				if err != nil {
					b.Fatal(err)
				}
				app = &gateway{peer: peer, limits: f}
			}
			svc := proxytest.NewService(b, "gw", app, proxy.ServiceOptions{})
			proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/", 1<<10)
		})
	}
}

// BenchmarkProxyGetModule is BenchmarkProxyGet with the Filter registered as a module
// rather than called from a RequestFilter: with a local limiter (a limit.Checker), an
// allowed request costs the module no allocation.
func BenchmarkProxyGetModule(b *testing.B) {
	peer := &proxy.Peer{Address: proxytest.NewRawOrigin(b, 1<<10)}
	tb, _ := limit.NewTokenBucket(limit.TokenBucketOptions{Rate: 1e9, Burst: 1 << 20})
	fl, _ := limit.NewInFlight(limit.InFlightOptions{Limit: 1 << 20})
	for _, c := range []struct {
		name string
		lim  limit.Limiter
	}{{"none", nil}, {"tokenbucket", tb}, {"inflight", fl}} {
		b.Run(c.name, func(b *testing.B) {
			var opts proxy.ServiceOptions
			if c.lim != nil {
				f, err := New(Options{Limiter: c.lim})
				if err != nil {
					b.Fatal(err)
				}
				opts.Modules = []proxy.Module{f}
			}
			svc := proxytest.NewService(b, "gw", &plain{peer: peer}, opts)
			proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/", 1<<10)
		})
	}
}

// plain is the gateway without a limit.
type plain struct {
	proxy.Phases[*gwCtx]
	peer *proxy.Peer
}

func (*plain) NewCtx() *gwCtx { return &gwCtx{} }

func (p *plain) UpstreamPeer(_ context.Context, _ *proxy.Session, _ *gwCtx) (*proxy.Peer, error) {
	return p.peer, nil
}
