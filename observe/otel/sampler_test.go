package otel_test

import (
	"context"
	"regexp"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
)

// countingProvider is a tracer provider whose tracers count the spans they start.
type countingProvider struct {
	trace.TracerProvider
	starts *atomic.Int64
}

func (p countingProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return countingTracer{p.TracerProvider.Tracer(name, opts...), p.starts}
}

type countingTracer struct {
	trace.Tracer
	starts *atomic.Int64
}

func (t countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.starts.Add(1)
	return t.Tracer.Start(ctx, name, opts...)
}

// newSampled returns an observer on a provider sampling with sampler, given to
// Options.Sampler too if option; the spans it records and the count of the spans
// its tracer started.
func newSampled(t *testing.T, sampler sdktrace.Sampler, option bool) (*otel.Observer, *tracetest.SpanRecorder, *atomic.Int64) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	starts := new(atomic.Int64)
	o := otel.Options{TracerProvider: countingProvider{sdk, starts}}
	if option {
		o.Sampler = sdkSampler(sampler)
	}
	obs, err := otel.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return obs, rec, starts
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// TestSamplerDrops: a request that Options.Sampler drops starts no span, and sends
// upstream what the SDK's tracer would have: the client's trace id (a new one if it
// sent none or an invalid one), a new parent id, the client's flags without the
// sampled flag, the client's tracestate; the same for each attempt.
func TestSamplerDrops(t *testing.T) {
	fast, fastRec, fastStarts := newSampled(t, sdktrace.NeverSample(), true)
	slow, _, _ := newSampled(t, sdktrace.NeverSample(), false)
	for _, tc := range []struct {
		name   string
		fields []string
		trace  string // the trace id sent upstream; "" for a new one
		flags  string
	}{
		{"no traceparent", nil, "", "00"},
		{"sampled", []string{"traceparent", clientParent}, clientTraceID, "00"},
		{"not sampled", []string{"traceparent", "00-" + clientTraceID + "-" + clientSpanID + "-00"}, clientTraceID, "00"},
		{"random", []string{"traceparent", "00-" + clientTraceID + "-" + clientSpanID + "-03"}, clientTraceID, "02"},
		{"tracestate", []string{"traceparent", clientParent, "tracestate", "vendor=x,other=y"}, clientTraceID, "00"},
		{"bad tracestate", []string{"traceparent", clientParent, "tracestate", "bad key=x"}, clientTraceID, "00"},
		{"later version", []string{"traceparent", "01-" + clientTraceID + "-" + clientSpanID + "-01-more"}, clientTraceID, "00"},
		{"upper case", []string{"traceparent", "00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-" + clientSpanID + "-01"}, "", "00"},
		{"zero trace id", []string{"traceparent", "00-00000000000000000000000000000000-" + clientSpanID + "-01"}, "", "00"},
		{"tracestate alone", []string{"tracestate", "vendor=x"}, "", "00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fastStarts.Load()
			two := []attempt{{peer: "10.0.0.7:9000", status: 502}, {peer: "10.0.0.8:9000", status: 200}}
			got := cycle(fast, request("GET", "/", tc.fields...), 200, two...)
			want := cycle(slow, request("GET", "/", tc.fields...), 200, two...)
			if n := fastStarts.Load() - before; n != 0 {
				t.Errorf("%d spans started", n)
			}
			if n := len(fastRec.Ended()); n != 0 {
				t.Errorf("%d spans recorded", n)
			}
			for i, h := range []*message.Header{got[0], got[1], want[0], want[1]} {
				m := traceparentRE.FindStringSubmatch(h.Get("traceparent"))
				if m == nil {
					t.Fatalf("upstream traceparent %d %q, want a version 00 one", i, h.Get("traceparent"))
				}
				if tc.trace != "" && m[1] != tc.trace || tc.trace == "" && m[1] == clientTraceID {
					t.Errorf("upstream traceparent %d %q, want trace %q (a new one if empty)", i, m[0], tc.trace)
				}
				if m[2] == clientSpanID || m[3] != tc.flags {
					t.Errorf("upstream traceparent %d %q, want a new parent id and flags %s", i, m[0], tc.flags)
				}
			}
			// The same for both attempts, as the SDK's server span's.
			if got[0].Get("traceparent") != got[1].Get("traceparent") {
				t.Errorf("attempts sent %q and %q", got[0].Get("traceparent"), got[1].Get("traceparent"))
			}
			if tc.trace == "" && got[0].Get("traceparent")[3:35] == want[0].Get("traceparent")[3:35] {
				t.Errorf("the same new trace id twice: %q", got[0].Get("traceparent"))
			}
			for i := range got {
				if g, w := got[i].Get("tracestate"), want[i].Get("tracestate"); g != w {
					t.Errorf("attempt %d: upstream tracestate %q, without Sampler %q", i, g, w)
				}
			}
		})
	}
}

// TestSamplerKeeps: a request that Options.Sampler keeps is traced as without it.
func TestSamplerKeeps(t *testing.T) {
	obs, rec, starts := newSampled(t, sdktrace.AlwaysSample(), true)
	r := request("GET", "/a", "traceparent", clientParent, "tracestate", "vendor=x")
	sent := cycle(obs, r, 200, attempt{peer: "10.0.0.7:9000", status: 200})
	server, clients := split(t, rec.Ended(), 1)
	if n := starts.Load(); n != 2 {
		t.Errorf("%d spans started, want 2", n)
	}
	if p := server.Parent(); p.TraceID().String() != clientTraceID || p.SpanID().String() != clientSpanID || !p.IsRemote() {
		t.Errorf("server span's parent %s/%s", p.TraceID(), p.SpanID())
	}
	sc := clients[0].SpanContext()
	if got, want := sent[0].Get("traceparent"), "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Errorf("upstream traceparent %q, want the client span's %q", got, want)
	}
	if got := sent[0].Get("tracestate"); got != "vendor=x" {
		t.Errorf("upstream tracestate %q", got)
	}
	checkAttrs(t, server, map[string]string{"url.path": "/a", "http.response.status_code": "200"})
}

// TestSamplerParentBased: with the SDK's default sampler in both places, the
// client's decision is followed: a client's unsampled request starts no span, a
// sampled one is traced, a new trace too.
func TestSamplerParentBased(t *testing.T) {
	obs, rec, starts := newSampled(t, sdktrace.ParentBased(sdktrace.AlwaysSample()), true)
	sent := cycle(obs, request("GET", "/", "traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-00"), 200,
		attempt{peer: "10.0.0.7:9000", status: 200})
	if n := starts.Load(); n != 0 || len(rec.Ended()) != 0 {
		t.Errorf("an unsampled parent: %d spans started, %d recorded", n, len(rec.Ended()))
	}
	if m := traceparentRE.FindStringSubmatch(sent[0].Get("traceparent")); m == nil || m[1] != clientTraceID || m[3] != "00" {
		t.Errorf("upstream traceparent %q", sent[0].Get("traceparent"))
	}
	cycle(obs, request("GET", "/", "traceparent", clientParent), 200, attempt{peer: "10.0.0.7:9000", status: 200})
	split(t, rec.Ended(), 1)
	rec.Reset()
	cycle(obs, request("GET", "/"), 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if server, _ := split(t, rec.Ended(), 1); server.Parent().IsValid() {
		t.Errorf("a new trace's server span has a parent %v", server.Parent())
	}
}

// TestSamplerFilter: a request Filter refuses is not sampled, and gets nothing.
func TestSamplerFilter(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	obs, err := otel.New(otel.Options{TracerProvider: tp, Sampler: sdkSampler(sdktrace.NeverSample()), Filter: func(*observe.Request) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	sent := cycle(obs, request("GET", "/"), 200, attempt{peer: "10.0.0.7:9000", status: 200})
	if got := sent[0].Get("traceparent"); got != "" {
		t.Errorf("upstream traceparent %q for a filtered request", got)
	}
}

// TestSamplerDropsPropagator: with a propagator other than W3C's alone, a request
// Options.Sampler drops passes on, through that propagator, the client's baggage and
// its trace, not sampled.
func TestSamplerDropsPropagator(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(context.Background())
	starts := new(atomic.Int64)
	obs, err := otel.New(otel.Options{
		TracerProvider: countingProvider{tp, starts},
		Sampler:        sdkSampler(sdktrace.NeverSample()),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := cycle(obs, request("GET", "/", "traceparent", clientParent, "tracestate", "vendor=x", "baggage", "tenant=acme"), 200,
		attempt{peer: "10.0.0.7:9000", status: 200})
	if n := starts.Load(); n != 0 {
		t.Errorf("%d spans started", n)
	}
	m := traceparentRE.FindStringSubmatch(sent[0].Get("traceparent"))
	if m == nil || m[1] != clientTraceID || m[2] == clientSpanID || m[3] != "00" {
		t.Errorf("upstream traceparent %q, want trace %s, a new parent id, not sampled", sent[0].Get("traceparent"), clientTraceID)
	}
	if got, want := sent[0].Get("tracestate")+" "+sent[0].Get("baggage"), "vendor=x tenant=acme"; got != want {
		t.Errorf("upstream tracestate and baggage %q, want %q", got, want)
	}
}

// sdkSampler makes an otel.Sampler of the SDK's sampler s, as docs show users.
func sdkSampler(s sdktrace.Sampler) otel.Sampler {
	return func(p otel.SamplingParameters) (bool, trace.TraceState) {
		r := s.ShouldSample(sdktrace.SamplingParameters{
			ParentContext: p.ParentContext, TraceID: p.TraceID, Name: p.Name, Kind: p.Kind})
		return r.Decision == sdktrace.Drop, r.Tracestate
	}
}
