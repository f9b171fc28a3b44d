package otel_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

// BenchmarkCycle measures the observer's events for one request with one attempt, as
// a service calls them, with the SDK's sampler dropping every trace and keeping every
// trace (recorded spans go to no exporter: the SDK's own cost of recording is in,
// the export's is not). The "sampler-" cases give the provider's sampler to
// Options.Sampler too.
func BenchmarkCycle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
		parent  bool
		option  bool // Options.Sampler is the provider's sampler
	}{
		{"never", sdktrace.NeverSample(), false, false},
		{"never/traceparent", sdktrace.NeverSample(), true, false},
		{"sampler-never", sdktrace.NeverSample(), false, true},
		{"sampler-never/traceparent", sdktrace.NeverSample(), true, true},
		{"always", sdktrace.AlwaysSample(), false, false},
		{"always/traceparent", sdktrace.AlwaysSample(), true, false},
		{"sampler-always", sdktrace.AlwaysSample(), false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.sampler))
			defer tp.Shutdown(b.Context())
			o := otel.Options{TracerProvider: tp}
			if bc.option {
				o.Sampler = sdkSampler(bc.sampler)
			}
			obs, err := otel.New(o)
			if err != nil {
				b.Fatal(err)
			}
			in := new(message.Header)
			in.Add("Host", "example.com")
			in.Add("User-Agent", "bench/1")
			if bc.parent {
				in.Add("traceparent", clientParent)
			}
			up := new(message.Header)
			up.Add("Host", "example.com")
			up.Add("traceparent", clientParent)
			now := time.Now()
			r := &observe.Request{Proto: "HTTP/1.1", Scheme: "http", Method: "GET", Target: "/index.html?x=1",
				Host: "example.com", Client: "127.0.0.1", Header: in}
			a := &observe.Attempt{Peer: "127.0.0.1:8080"}
			b.ReportAllocs()
			for b.Loop() {
				r.Start, r.Data = now, nil
				obs.RequestStart(r)
				*a = observe.Attempt{Peer: "127.0.0.1:8080", Start: now}
				obs.AttemptStart(r, a)
				a.Proto, a.Connected = "HTTP/1.1", now
				obs.UpstreamRequest(r, a, up)
				a.End, a.Status = now, 200
				obs.AttemptEnd(r, a)
				r.End, r.Status = now, 200
				obs.RequestEnd(r)
			}
		})
	}
}

// BenchmarkBase is the same cycle through an observer that does nothing, for scale.
func BenchmarkBase(b *testing.B) {
	var obs observe.Observer = observe.Base{}
	r := &observe.Request{Method: "GET", Target: "/"}
	a := &observe.Attempt{}
	up := new(message.Header)
	b.ReportAllocs()
	for b.Loop() {
		obs.RequestStart(r)
		obs.AttemptStart(r, a)
		obs.UpstreamRequest(r, a, up)
		obs.AttemptEnd(r, a)
		obs.RequestEnd(r)
	}
}

// BenchmarkProxy measures one GET through a proxy service on loopback, its client
// connection kept alive, to an origin that answers 1 KiB, with no observer and with
// the observer sampling never and always (no exporter), and sampling never with
// Options.Sampler, with the client's traceparent and without one (as bench/run.sh's
// load sends): the differences are the observer's cost on a real request, the SDK's
// included.
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler // nil: no observer
		option  bool             // Options.Sampler is the provider's sampler
		orphan  bool             // the client sends no traceparent
	}{
		{"none", nil, false, false},
		{"never", sdktrace.NeverSample(), false, false},
		{"sampler-never", sdktrace.NeverSample(), true, false},
		{"sampler-never-no-parent", sdktrace.NeverSample(), true, true},
		{"always", sdktrace.AlwaysSample(), false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			peer, err := proxy.NewPeer(proxytest.NewRawOrigin(b, 1024))
			if err != nil {
				b.Fatal(err)
			}
			opts := proxy.ServiceOptions{MaxRequestsPerConn: -1}
			if bc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.sampler))
				b.Cleanup(func() { tp.Shutdown(context.Background()) }) // after the service's
				o := otel.Options{TracerProvider: tp}
				if bc.option {
					o.Sampler = sdkSampler(bc.sampler)
				}
				obs, err := otel.New(o)
				if err != nil {
					b.Fatal(err)
				}
				opts.Observers = []observe.Observer{obs}
			}
			svc := proxytest.NewService(b, "bench", &hops{peers: []*proxy.Peer{peer}}, opts)
			var fields []string
			if !bc.orphan {
				fields = append(fields, "traceparent: "+clientParent)
			}
			proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/1k", 1024, fields...)
		})
	}
}
