package otel

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/message"
)

const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpanID  = "00f067aa0ba902b7"
)

// traceparentSeeds are traceparent values the W3C specification and the OpenTelemetry
// propagator tell apart.
var traceparentSeeds = []string{
	"",
	"00-" + testTraceID + "-" + testSpanID + "-01",
	"00-" + testTraceID + "-" + testSpanID + "-00",
	"00-" + testTraceID + "-" + testSpanID + "-02", // random
	"00-" + testTraceID + "-" + testSpanID + "-03",
	"00-" + testTraceID + "-" + testSpanID + "-04",  // a reserved flag in version 00
	"00-" + testTraceID + "-" + testSpanID + "-01-", // a '-' ending the flags
	"00-" + testTraceID + "-" + testSpanID + "-01-x",
	"00-" + testTraceID + "-" + testSpanID + "-1",
	"00-" + testTraceID + "-" + testSpanID + "-011",
	"00-" + testTraceID + "-" + testSpanID,
	"00-" + testTraceID + "-" + testSpanID + "-",
	"00-" + testTraceID + "-0000000000000000-01", // zero parent id
	"00-00000000000000000000000000000000-" + testSpanID + "-01",
	"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + testSpanID + "-01", // upper case
	"00-" + testTraceID + "-" + testSpanID + "-0A",
	"00-" + testTraceID + "-" + testSpanID + "-0a",
	"00-" + testTraceID + "-" + testSpanID + "-ff",
	"01-" + testTraceID + "-" + testSpanID + "-01",
	"01-" + testTraceID + "-" + testSpanID + "-09-what-comes-later", // a later version's fields
	"01-" + testTraceID + "-" + testSpanID + "-0901",
	"fe-" + testTraceID + "-" + testSpanID + "-01",
	"ff-" + testTraceID + "-" + testSpanID + "-01", // the invalid version
	"0-" + testTraceID + "-" + testSpanID + "-01",
	"000-" + testTraceID + "-" + testSpanID + "-01",
	"00",
	"00-",
	"00-" + testTraceID,
	"00-" + testTraceID + "-",
	"00-" + testTraceID + "0-" + testSpanID + "-01",
	"00-" + testTraceID + "-" + testSpanID + "0-01",
	"00_" + testTraceID + "_" + testSpanID + "_01",
	" 00-" + testTraceID + "-" + testSpanID + "-01",
	"00-" + testTraceID + "-" + testSpanID + "-01 ",
	"zz-" + testTraceID + "-" + testSpanID + "-01",
}

// tracestateSeeds are tracestate values, valid and not.
var tracestateSeeds = []string{"", "vendor=x", "a=1, b=2", "a=1,a=2", "bad key=1", ",,a=1,", "a=" + string(make([]byte, 300))}

// checkLikePropagator checks that the observer's own reading and writing of W3C
// trace context does what propagation.TraceContext does with the same fields.
func checkLikePropagator(t *testing.T, tp, ts string) {
	t.Helper()
	h := new(message.Header)
	if tp != "" {
		h.Add("Traceparent", tp)
	}
	if ts != "" {
		h.Add("tracestate", ts)
	}
	prop := propagation.TraceContext{}
	want := trace.SpanContextFromContext(prop.Extract(context.Background(), &HeaderCarrier{Header: h}))
	got := extractW3C(h)
	if !got.Equal(want) || got.IsRemote() != want.IsRemote() {
		t.Fatalf("traceparent %q tracestate %q: extractW3C = %+v, propagator %+v", tp, ts, got, want)
	}

	// Written back, as the propagator writes it.
	ours, theirs := new(message.Header), new(message.Header)
	injectW3C(ours, got, "")
	prop.Inject(trace.ContextWithSpanContext(context.Background(), want), &HeaderCarrier{Header: theirs})
	if ours.String() != theirs.String() {
		t.Fatalf("traceparent %q tracestate %q: injectW3C wrote\n%s, the propagator\n%s", tp, ts, ours, theirs)
	}
}

func TestTraceparentLikePropagator(t *testing.T) {
	for _, tp := range traceparentSeeds {
		for _, ts := range tracestateSeeds {
			checkLikePropagator(t, tp, ts)
		}
	}
	// The flags the propagator keeps, written back.
	for _, f := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsRandom, trace.FlagsSampled | trace.FlagsRandom, 0xff} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: f})
		ours, theirs := new(message.Header), new(message.Header)
		injectW3C(ours, sc, "")
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), &HeaderCarrier{Header: theirs})
		if ours.String() != theirs.String() {
			t.Errorf("flags %v: injectW3C wrote %q, the propagator %q", f, ours, theirs)
		}
	}
}

func FuzzTraceparent(f *testing.F) {
	for _, tp := range traceparentSeeds {
		f.Add(tp, "")
	}
	for _, ts := range tracestateSeeds {
		f.Add("00-"+testTraceID+"-"+testSpanID+"-01", ts)
	}
	f.Fuzz(func(t *testing.T, tp, ts string) {
		checkLikePropagator(t, tp, ts)
	})
}

// TestTraceparentAllocs: reading a traceparent without a tracestate allocates nothing.
func TestTraceparentAllocs(t *testing.T) {
	h := new(message.Header)
	h.Add("traceparent", "00-"+testTraceID+"-"+testSpanID+"-01")
	if n := testing.AllocsPerRun(100, func() {
		if !extractW3C(h).IsValid() {
			t.Fatal("not valid")
		}
	}); n != 0 {
		t.Errorf("extractW3C allocates %v times", n)
	}
}

// TestParentCtx: the context the sampler gets holds the span context as the trace
// API's ContextWithRemoteSpanContext would, and nothing else.
func TestParentCtx(t *testing.T) {
	o, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.spanKey == nil {
		t.Fatal("the parent context does not work with this trace API")
	}
	c := o.newParentCtx()
	sc := extractW3C(func() *message.Header {
		h := new(message.Header)
		h.Add("traceparent", "00-"+testTraceID+"-"+testSpanID+"-01")
		return h
	}())
	c.span.sc = sc
	want := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	if got := trace.SpanContextFromContext(&c); !got.Equal(trace.SpanContextFromContext(want)) || !got.IsRemote() {
		t.Errorf("span context %+v, want %+v", got, sc)
	}
	span := trace.SpanFromContext(&c)
	if span.IsRecording() {
		t.Error("the parent span records")
	}
	// Its other methods do nothing, as the trace API's for a remote span context.
	span.SetName("x")
	span.SetAttributes()
	span.SetStatus(codes.Error, "x")
	span.AddEvent("x")
	span.AddLink(trace.Link{})
	span.RecordError(errors.New("x"))
	span.End()
	if _, s := span.TracerProvider().Tracer("x").Start(context.Background(), "x"); s.IsRecording() {
		t.Error("the parent span's tracer records")
	}
	if got := trace.SpanContextFromContext(&c); !got.Equal(sc) {
		t.Errorf("span context %+v after the span's methods, want %+v", got, sc)
	}
	type key struct{}
	if c.Value(key{}) != nil {
		t.Error("a value for another key")
	}
	if !o.newParentCtx().works() {
		t.Error("works() is false")
	}
	broken := parentCtx{}
	if broken.works() {
		t.Error("a parent context without a key works")
	}
}

func TestHex8(t *testing.T) {
	for _, v := range []uint32{0, 1, 9, 10, 15, 16, 0x9a9a9a9a, 0xdeadbeef, 0x01234567, 0x89abcdef, 0xffffffff, 0xa0b0c0d0} {
		var b [8]byte
		hex8(b[:], v)
		if want := fmt.Sprintf("%08x", v); string(b[:]) != want {
			t.Errorf("hex8(%#x) = %q, want %q", v, b[:], want)
		}
	}
}
