package otel

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	gotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gotthard-proxy/gotthard/observe"
)

// ScopeName is the instrumentation scope of the observer's tracer: the spans it makes
// carry it as their scope's name.
const ScopeName = "github.com/gotthard-proxy/gotthard/observe/otel"

// Observer is an [observe.Observer] that traces requests and their attempts (see the
// package doc). Make one with [New] and register it on the services to trace
// (proxy.ServiceOptions.Observers); one Observer may serve many services. It is safe
// for concurrent use.
type Observer struct {
	// Immutable after New.
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	fields []string // prop.Fields(): a request with none of them has no context to extract
	route  func(*observe.Request) string
	filter func(*observe.Request) bool
	query  bool
	// server and client are the span kind options, made once: each makes a closure.
	server, client trace.SpanStartOption

	// states holds *state values between requests.
	states sync.Pool
}

var _ observe.Observer = (*Observer)(nil)

// maxAttrs is the most attributes one event sets at once.
const maxAttrs = 12

// state is a request's value in Request.Data: its server span and the span of its
// attempt under way. The events of one request never overlap, so it needs no lock.
type state struct {
	ctx    context.Context // the server span's context
	server trace.Span
	// clientCtx and client are the attempt's span and its context, between
	// AttemptStart and AttemptEnd.
	clientCtx context.Context
	client    trace.Span
	// lastEnd is when the last attempt ended: the server span ends no sooner, so
	// that it covers its client spans (the proxy takes an attempt's end after the
	// response's, once the peer's connection is back in its pool).
	lastEnd time.Time
	carrier HeaderCarrier
	attrs   [maxAttrs]attribute.KeyValue
	// opts holds the options of a span's start, so that their slice is not made
	// at each start.
	opts [2]trace.SpanStartOption
}

// New returns an Observer configured by o. It checks nothing that can fail today; the
// error is there so that options added later can be checked.
func New(o Options) (*Observer, error) {
	tp := o.TracerProvider
	if tp == nil {
		tp = gotel.GetTracerProvider()
	}
	prop := o.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	obs := &Observer{
		tracer: tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   prop,
		fields: prop.Fields(),
		route:  o.Route,
		filter: o.Filter,
		query:  o.Query,
		server: trace.WithSpanKind(trace.SpanKindServer),
		client: trace.WithSpanKind(trace.SpanKindClient),
	}
	obs.states.New = func() any { return new(state) }
	return obs, nil
}

// hasAny reports whether h has a non-empty field of one of the names. A propagator reads
// the fields it writes (its Fields, by the OpenTelemetry specification), so a request
// with none of them is not handed to Extract, which would find nothing.
func hasAny(h observe.Header, names []string) bool {
	for _, name := range names {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

// RequestStart starts the request's server span, a child of the trace context the
// client sent, if any.
func (o *Observer) RequestStart(r *observe.Request) {
	if o.filter != nil && !o.filter(r) {
		return
	}
	st := o.states.Get().(*state)
	ctx := context.Background()
	if r.Header != nil && hasAny(r.Header, o.fields) {
		st.carrier.Header = r.Header
		ctx = o.prop.Extract(ctx, &st.carrier)
		st.carrier.Header = nil
	}
	method, known := methodName(r.Method)
	st.ctx, st.server = o.tracer.Start(ctx, method, st.startOpts(o.server, r.Start)...)
	r.Data = st
	if !st.server.IsRecording() {
		return
	}

	path, query := splitTarget(r.Target)
	attrs := append(st.attrs[:0],
		methodAttr(r.Method, known),
		semconv.URLScheme(r.Scheme),
		semconv.URLPath(strings.Clone(path)),
	)
	if !known {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(strings.Clone(r.Method)))
	}
	if o.query && query != "" {
		attrs = append(attrs, semconv.URLQuery(strings.Clone(query)))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		if port == 0 {
			port = defaultPort(r.Scheme)
		}
		attrs = append(attrs, semconv.ServerAddress(strings.Clone(host)), semconv.ServerPort(port))
	}
	if v := protoVersion(r.Proto); v != "" {
		attrs = append(attrs, semconv.NetworkProtocolVersion(v))
	}
	if r.Client != "" {
		attrs = append(attrs, semconv.ClientAddress(strings.Clone(r.Client)))
	}
	if r.Header != nil {
		if ua := r.Header.Get("User-Agent"); ua != "" {
			attrs = append(attrs, semconv.UserAgentOriginal(strings.Clone(ua)))
		}
	}
	if o.route != nil {
		if route := o.route(r); route != "" {
			st.server.SetName(method + " " + route)
			attrs = append(attrs, semconv.HTTPRoute(strings.Clone(route)))
		}
	}
	st.server.SetAttributes(attrs...)
	clear(attrs)
}

// AttemptStart starts the attempt's client span, a child of the server span; not when
// the server span is neither recorded nor sampled (see the package doc: Cost).
func (o *Observer) AttemptStart(r *observe.Request, a *observe.Attempt) {
	st, _ := r.Data.(*state)
	if st == nil {
		return
	}
	if st.client != nil { // an attempt that did not end: end it here
		st.client.End()
		st.client, st.clientCtx = nil, nil
	}
	if !st.server.IsRecording() && !st.server.SpanContext().IsSampled() {
		return // the trace is not sampled: UpstreamRequest sends the server span's context
	}
	method, known := methodName(r.Method)
	st.clientCtx, st.client = o.tracer.Start(st.ctx, method, st.startOpts(o.client, a.Start)...)
	a.Data = st.client
	if !st.client.IsRecording() {
		return
	}

	attrs := append(st.attrs[:0], methodAttr(r.Method, known))
	if !known {
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(strings.Clone(r.Method)))
	}
	scheme := "http"
	if a.TLS {
		scheme = "https"
	}
	if isUnix(a.Peer) {
		attrs = append(attrs, semconv.ServerAddress(strings.Clone(a.Peer)), semconv.NetworkTransportUnix)
	} else if host, port := splitHostPort(a.Peer); host != "" {
		if port == 0 {
			port = defaultPort(scheme)
		}
		attrs = append(attrs, semconv.ServerAddress(strings.Clone(host)), semconv.ServerPort(port))
	}
	attrs = append(attrs, semconv.URLFull(o.fullURL(scheme, a.Peer, r.Target)))
	if a.N > 0 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(a.N))
	}
	st.client.SetAttributes(attrs...)
	clear(attrs)
}

// UpstreamRequest writes the client span's context into the upstream request's header.
func (o *Observer) UpstreamRequest(r *observe.Request, a *observe.Attempt, h observe.Header) {
	st, _ := r.Data.(*state)
	if st == nil {
		return
	}
	ctx := st.clientCtx
	if st.client == nil {
		ctx = st.ctx // an unsampled trace: the server span's context, unsampled
	}
	if h != nil {
		st.carrier.Header = h
		o.prop.Inject(ctx, &st.carrier)
		st.carrier.Header = nil
	}
	if st.client == nil {
		return
	}
	if st.client.IsRecording() {
		if v := protoVersion(a.Proto); v != "" {
			st.client.SetAttributes(semconv.NetworkProtocolVersion(v))
		}
	}
}

// AttemptEnd ends the attempt's client span, with the peer's status and the attempt's
// error.
func (o *Observer) AttemptEnd(r *observe.Request, a *observe.Attempt) {
	st, _ := r.Data.(*state)
	if st == nil || st.client == nil {
		return
	}
	span := st.client
	st.client, st.clientCtx = nil, nil
	a.Data = nil
	if span.IsRecording() {
		attrs := st.attrs[:0]
		if a.Status != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(a.Status))
		}
		switch {
		case a.Err != nil:
			attrs = append(attrs, errorType(a.ErrType))
			span.SetStatus(codes.Error, a.Err.Error())
		case a.Status >= 400:
			attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(a.Status)))
			span.SetStatus(codes.Error, "")
		}
		span.SetAttributes(attrs...)
		clear(attrs)
	}
	endAt(span, a.End)
	st.lastEnd = a.End
}

// RequestEnd ends the request's server span, with the client's status and the
// request's error.
func (o *Observer) RequestEnd(r *observe.Request) {
	st, _ := r.Data.(*state)
	if st == nil {
		return
	}
	r.Data = nil
	if st.client != nil { // an attempt that did not end: end it here
		st.client.End()
	}
	span := st.server
	if span.IsRecording() {
		attrs := st.attrs[:0]
		if r.Status != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(r.Status))
		}
		switch {
		case r.Status >= 500:
			if r.ErrType != "" {
				attrs = append(attrs, errorType(r.ErrType))
			} else {
				attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(r.Status)))
			}
			span.SetStatus(codes.Error, errText(r.Err))
		case r.Err != nil && r.Status == 0:
			attrs = append(attrs, errorType(r.ErrType))
			span.SetStatus(codes.Error, r.Err.Error())
		case r.Err != nil:
			// A 4xx with an error (a bad request, a client that left): the
			// error's kind is recorded, the status left unset as the semantic
			// conventions ask of servers.
			attrs = append(attrs, errorType(r.ErrType))
		}
		span.SetAttributes(attrs...)
		clear(attrs)
	}
	end := r.End
	if !end.IsZero() && end.Before(st.lastEnd) {
		end = st.lastEnd
	}
	endAt(span, end)
	// The attributes were cleared after each use; the rest is cleared here, so that
	// a pooled state keeps nothing of the request.
	st.ctx, st.server, st.clientCtx, st.client = nil, nil, nil, nil
	st.lastEnd = time.Time{}
	st.opts = [2]trace.SpanStartOption{}
	o.states.Put(st)
}

// fullURL is url.full for an attempt: the peer's address as the authority, then the
// request's path (and query if the observer records queries).
func (o *Observer) fullURL(scheme, peer, target string) string {
	path, query := splitTarget(target)
	if isUnix(peer) {
		peer = "localhost"
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(peer) + len(target))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(peer)
	if strings.HasPrefix(path, "/") {
		b.WriteString(path)
		if o.query && query != "" {
			b.WriteByte('?')
			b.WriteString(query)
		}
	}
	return b.String()
}

// startOpts returns the options to start a span of kind at t (now if zero).
func (st *state) startOpts(kind trace.SpanStartOption, t time.Time) []trace.SpanStartOption {
	st.opts[0] = kind
	if t.IsZero() {
		return st.opts[:1]
	}
	st.opts[1] = trace.WithTimestamp(t)
	return st.opts[:2]
}

// endAt ends span at t, or now if t is zero. A span that does not record has no use
// for the time, and is not given it: the option costs an allocation.
func endAt(span trace.Span, t time.Time) {
	if t.IsZero() || !span.IsRecording() {
		span.End()
		return
	}
	span.End(trace.WithTimestamp(t))
}
