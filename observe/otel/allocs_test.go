//go:build !race

// The race detector makes sync.Pool drop values at random, so allocations are
// counted without it.

package otel_test

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
)

// TestSamplerAllocs: a request that Options.Sampler drops allocates once, its
// upstream traceparent, with a traceparent from the client or without.
func TestSamplerAllocs(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(t.Context())
	obs, err := otel.New(otel.Options{TracerProvider: tp, Sampler: sdkSampler(sdktrace.NeverSample())})
	if err != nil {
		t.Fatal(err)
	}
	for _, parent := range []bool{false, true} {
		in := new(message.Header)
		in.Add("Host", "example.com")
		if parent {
			in.Add("traceparent", clientParent)
		}
		up := new(message.Header)
		up.Add("Host", "example.com")
		up.Add("traceparent", clientParent)
		now := time.Now()
		r := &observe.Request{Proto: "HTTP/1.1", Scheme: "http", Method: "GET", Target: "/", Host: "example.com", Header: in, Start: now}
		a := &observe.Attempt{Peer: "127.0.0.1:8080", Start: now}
		if n := testing.AllocsPerRun(1000, func() {
			r.Data = nil
			obs.RequestStart(r)
			a.Data = nil
			obs.AttemptStart(r, a)
			obs.UpstreamRequest(r, a, up)
			obs.AttemptEnd(r, a)
			obs.RequestEnd(r)
		}); n > 1 {
			t.Errorf("traceparent from the client %v: %v allocations per request, want 1", parent, n)
		}
	}
}
