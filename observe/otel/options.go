package otel

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Options configures an [Observer]. The zero value traces every request with the
// global tracer provider and W3C trace context.
type Options struct {
	// TracerProvider makes the observer's tracer. If nil, it is the global one,
	// otel.GetTracerProvider(), taken once in [New]: a provider registered later with
	// otel.SetTracerProvider is used (the global one delegates to it), but until then
	// spans are dropped. Give it explicitly in a program that makes its own.
	TracerProvider trace.TracerProvider

	// Propagator reads the trace context from the client's header fields and writes
	// it into the upstream request's. If nil, it is propagation.TraceContext{} (W3C
	// traceparent and tracestate); use propagation.NewCompositeTextMapPropagator to
	// add baggage or another format.
	Propagator propagation.TextMapPropagator

	// Sampler, if not nil, decides whether to trace a request before any span is
	// started: the observer asks it at RequestStart with what the SDK's tracer would
	// give the provider's sampler for the server span (the client's span context as
	// the parent, its trace id or a new one, the method as the name, kind SERVER, no
	// attributes or links). A request it drops costs no span, no
	// context and no call to the tracer; the upstream still gets a traceparent, not
	// sampled (see the package doc: Not sampled). A request it records or samples is
	// started by the tracer as without it, and the provider's sampler decides again:
	// a request is traced when both keep it. So give the provider's own sampler
	// here, or put the policy here and give the provider one that keeps what it is
	// given (sdktrace.ParentBased(sdktrace.AlwaysSample()), the SDK's default, or
	// AlwaysSample). One sampler in both places is exact for the SDK's samplers
	// except TraceIDRatioBased deciding a new trace: the tracer draws that trace's
	// id anew, so both draws would have to keep it. The context the sampler gets is
	// valid for the length of its call only. If nil, every request starts a server
	// span with the tracer, which asks the provider's sampler.
	Sampler Sampler

	// Route returns the request's route, a template of low cardinality such as
	// "/users/{id}", or "" if it has none. It runs at RequestStart, before the first
	// phase, for the requests that are sampled only; the route names the server span
	// ("GET /users/{id}") and is its http.route attribute (a sampler sees the method
	// alone as the name). If nil, spans are named by the method alone. It must be
	// safe for concurrent use and must not keep r.
	Route func(r *observe.Request) string

	// Filter reports whether to trace the request; it runs at RequestStart. A request
	// it refuses has no spans and its upstream requests get no trace context from the
	// observer (fields the client sent pass as the proxy passes them). If nil, every
	// request is traced. It must be safe for concurrent use and must not keep r.
	Filter func(r *observe.Request) bool

	// Query records the query of the request-target as url.query on server spans and
	// in url.full on client spans. If false, they hold the path only: queries often
	// carry tokens and personal data.
	Query bool
}

// SamplingParameters is what a [Sampler] is asked about a request: what the SDK's tracer
// would give the provider's sampler for the request's server span.
type SamplingParameters struct {
	// ParentContext holds the client's span context, when it sent one; it is valid
	// for the length of the Sampler's call only.
	ParentContext context.Context
	TraceID       trace.TraceID // the client's trace id, or a new one
	Name          string        // the request's method
	Kind          trace.SpanKind
}

// Sampler decides whether to trace a request before any span is started (see
// [Options].Sampler): drop, and the tracestate the upstream traceparent of a dropped
// request carries. The package uses the OpenTelemetry API only; with the SDK, wrap the
// provider's sampler s:
//
//	func(p otel.SamplingParameters) (bool, trace.TraceState) {
//		r := s.ShouldSample(sdktrace.SamplingParameters{
//			ParentContext: p.ParentContext, TraceID: p.TraceID, Name: p.Name, Kind: p.Kind})
//		return r.Decision == sdktrace.Drop, r.Tracestate
//	}
type Sampler func(p SamplingParameters) (drop bool, state trace.TraceState)
