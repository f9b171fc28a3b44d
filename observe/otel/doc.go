// Package otel traces a Gotthard service's requests with OpenTelemetry: an
// [observe.Observer] that makes a SERVER span for each request and a CLIENT span for
// each attempt to have a peer answer it, and carries the W3C trace context from the
// client, through the proxy, to the origin.
//
// It imports the OpenTelemetry API only (go.opentelemetry.io/otel, its trace and
// propagation packages and the semantic conventions of the release it pins); the
// program chooses the SDK, the sampler and the exporter, and hands the provider in
// [Options.TracerProvider] (and the sampler, wrapped as a [Sampler], in
// [Options.Sampler]).
//
// # Spans
//
// For each request the observer starts, at RequestStart, a span of kind SERVER whose
// start time is the request's arrival. Its parent is the context the propagator
// ([Options.Propagator], W3C traceparent and tracestate by default) extracts from the
// client's header fields; without one it starts a new trace. For each attempt
// (AttemptStart .. AttemptEnd, so each retry has its own) it starts a span of kind
// CLIENT, a child of the server span, and when the upstream request head is built
// (UpstreamRequest) it writes that span's context into it, so the origin sees a
// traceparent whose parent id is the client span's. The server span ends at RequestEnd,
// with the time the response was written (or its last attempt's end, if later: the
// proxy ends an attempt once the peer's connection is back in its pool).
//
// Names and attributes follow the OpenTelemetry HTTP semantic conventions (semconv
// v1.43.0): a span is named by its method ("GET"), or by method and route ("GET
// /users/{id}") when [Options.Route] names one; an unknown method is named "HTTP" and
// recorded as "_OTHER" with http.request.method_original.
//
//	server span                           client span
//	http.request.method                   http.request.method
//	url.scheme, url.path (url.query)      url.full (scheme, peer address and path)
//	server.address, server.port (Host)    server.address, server.port (the peer)
//	network.protocol.version              network.protocol.version (upstream)
//	client.address, user_agent.original   http.request.resend_count (on retries)
//	http.route (with Options.Route)       http.response.status_code
//	http.response.status_code             error.type
//	error.type
//
// The query is left out unless [Options.Query] asks for it: it often carries what a
// trace store should not keep. A server span's status is Error when the client got a
// 5xx, or no status at all because of an error; a 4xx leaves it unset, as the
// conventions say for servers. A client span's status is Error when the attempt failed
// (its error is the description) or its peer answered 4xx or 5xx. error.type is the
// proxy's error type as proxy.ErrorType names it ("connection refused", "connect
// timeout", ...) when there was an
// error, else the status code.
//
// # Not sampled
//
// A request the sampler drops is not traced, but the decision travels on: the upstream
// request carries a traceparent whose sampled flag is clear, so that an origin whose
// sampler follows its parent's decision (ParentBased, the OpenTelemetry SDKs' default)
// drops it too, and each trace is kept or dropped whole where it enters. That
// traceparent is the one the SDK gives the span it does not record: the client's trace
// id, a new parent id, the client's flags without the sampled flag (the random flag
// stays), with the client's tracestate (as the sampler returns it). A request that
// came without a valid traceparent gets a new trace id, not sampled: where a trace
// enters is where it is decided, and sending nothing would let each origin start a
// trace of its own for a request the proxy chose not to trace (W3C Trace Context,
// "Mutating the traceparent field": a proxy may update the parent id and the sampled
// flag, or restart the trace). Each attempt of such a request carries the same one.
// A request [Options.Filter] refuses gets no trace context from the observer.
//
// # Cost
//
// With [Options.Sampler], a request it drops costs no span, no context and no call to
// the tracer: the observer reads the client's traceparent without allocating, asks the
// sampler (with a pooled context holding the client's span context) and writes the
// upstream traceparent itself, eight hex digits at a time, once for all the attempts.
// That value is the request's one allocation and its Request.Data. (A client's
// tracestate costs a few more: it is parsed, and written back, as the SDK does; so
// does a propagator other than W3C's alone, which the observer calls.) Without
// Sampler, each request starts a server span with the tracer, which asks the
// provider's sampler: a dropped request then costs the SDK's span, its context and the
// start time's option, 4 allocations (5 when the client sent a traceparent).
// Attributes are built only for spans that record (trace.Span.IsRecording), and the
// attempts of a request that is not sampled get no client span: the server span is
// neither recorded nor sampled, so neither would its children be under the SDK's
// samplers (NeverSample, and ParentBased, the default), and the upstream request
// carries the server span's context, not sampled, as a client span's would (a sampler
// of your own that samples the children of an unsampled span sees no client spans).
// A request that is not sampled skips the events it has no use for
// (observe.Request.Skip): the attempts' starts and ends, and when Options.Sampler
// dropped it with W3C's propagator, the request's end as well; the service then does
// not prepare them either.
// The strings a recorded span keeps are copied, so that a span waiting in an
// exporter's batch does not hold the request's memory.
//
// One run on a 2-core machine shared with other work, SDK v1.47.0, no exporter, a
// request with one attempt, the median of 10 (go test -run XXX -bench Cycle -benchtime
// 200000x -count 10 -benchmem ./observe/otel):
//
//	NeverSample, given to Options.Sampler too    0.35µs, 1 allocation, 64 B
//	  the client sent a traceparent              0.44µs, 1 allocation, 64 B
//	NeverSample, without Options.Sampler         1.1µs, 4 allocations, 232 B
//	  the client sent a traceparent              1.5µs, 5 allocations, 360 B
//	AlwaysSample                                 8µs, 22 allocations, 3.9 KiB
//
// BenchmarkProxy measures it on a real proxy, bench/instr.sh and bench/ab.sh on the
// example gateway (-trace never gives the provider's sampler to Options.Sampler too).
//
// # Use
//
//	sampler := sdktrace.ParentBased(sdktrace.AlwaysSample()) // the SDK's default
//	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(exporter))
//	defer tp.Shutdown(context.Background())
//	obs, err := otel.New(otel.Options{TracerProvider: tp, Sampler: func(p otel.SamplingParameters) (bool, trace.TraceState) {
//		r := sampler.ShouldSample(sdktrace.SamplingParameters{
//			ParentContext: p.ParentContext, TraceID: p.TraceID, Name: p.Name, Kind: p.Kind})
//		return r.Decision == sdktrace.Drop, r.Tracestate
//	}})
//	if err != nil {
//		return err
//	}
//	svc, err := proxy.NewService("gateway", app, proxy.ServiceOptions{
//		Observers: []observe.Observer{obs},
//	})
//
// A program that only wants the client's trace context passed on needs no observer: the
// proxy forwards traceparent and tracestate as it forwards any end-to-end field. gRPC
// calls through the proxy get HTTP spans, without the rpc.* attributes.
package otel
