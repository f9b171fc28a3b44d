package otel

import (
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
