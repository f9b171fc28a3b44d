package otel

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

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
	// w3c reports that prop is propagation.TraceContext, whose Extract and Inject
	// the observer does itself, without their allocations.
	w3c     bool
	sampler Sampler // Options.Sampler
	// marker and spanKey make parentCtx answer for the trace API's span key;
	// spanKey is nil if that failed the check in New (a later API that looks
	// contexts up otherwise), and the sampler then gets a context of its own.
	marker  *parentSpan
	spanKey context.Context
	route   func(*observe.Request) string
	filter  func(*observe.Request) bool
	query   bool
	// server and client are the span kind options, made once: each makes a closure.
	server, client trace.SpanStartOption

	// states holds *state values between requests, unsampled *unsampled values.
	states, unsampled sync.Pool
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
	// tp is the traceparent sent upstream when no client span is (the trace is
	// not sampled), formatted at the first attempt for the retries.
	tp string
}

// dropTraceparent is a request's value in Request.Data when Options.Sampler dropped
// it, the propagator is W3C's and there is no tracestate to send: the traceparent its
// upstream requests carry, written once at RequestStart. It is the request's own,
// never pooled nor written again, so that the field's value can be a string over it
// rather than a copy: its one allocation.
type dropTraceparent [traceparentLen]byte

// String returns the traceparent, sharing b's memory.
func (b *dropTraceparent) String() string { return unsafe.String(&b[0], len(b)) }

// unsampled is a request's value in Request.Data when Options.Sampler dropped it and
// its upstream requests carry a tracestate, or the propagator is not W3C's alone (else
// it is a dropTraceparent): it has no span, only the span context its upstream
// requests carry. It is much smaller than a state, which it spares such a request.
type unsampled struct {
	sc  trace.SpanContext // not sampled
	ctx context.Context   // the context extracted from the client
	tp  string            // sc's traceparent, formatted at the first attempt for the retries
	// pctx is the context the sampler gets, holding the client's span context.
	pctx    parentCtx
	carrier HeaderCarrier
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
	_, w3c := prop.(propagation.TraceContext)
	obs := &Observer{
		tracer:  tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:    prop,
		fields:  prop.Fields(),
		w3c:     w3c,
		sampler: o.Sampler,
		route:   o.Route,
		filter:  o.Filter,
		query:   o.Query,
		server:  trace.WithSpanKind(trace.SpanKindServer),
		client:  trace.WithSpanKind(trace.SpanKindClient),
		marker:  new(parentSpan),
	}
	obs.spanKey = spanKey(obs.marker)
	if !obs.newParentCtx().works() {
		obs.spanKey = nil
	}
	obs.states.New = func() any { return new(state) }
	obs.unsampled.New = func() any { return &unsampled{pctx: obs.newParentCtx()} }
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
		r.Skip = observe.AllEvents
		return
	}
	var (
		u  *unsampled // with Options.Sampler and a propagator not W3C's alone
		st *state
	)
	ctx := context.Background()
	var parent trace.SpanContext // the client's, from a W3C traceparent
	if o.w3c {
		parent = extractW3C(r.Header)
	} else {
		var carrier *HeaderCarrier
		if o.sampler != nil {
			u = o.unsampled.Get().(*unsampled)
			carrier = &u.carrier
		} else {
			st = o.states.Get().(*state)
			carrier = &st.carrier
		}
		if r.Header != nil && hasAny(r.Header, o.fields) {
			carrier.Header = r.Header
			ctx = o.prop.Extract(ctx, carrier)
			carrier.Header = nil
		}
	}
	method, known := methodName(r.Method)
	if o.sampler != nil {
		if o.drop(r, u, ctx, parent, method) {
			return
		}
		if u != nil {
			o.unsampled.Put(u)
		}
	}
	if st == nil {
		st = o.states.Get().(*state)
	}
	r.Data = st
	if parent.IsValid() {
		ctx = o.remoteParent(ctx, parent)
	}
	st.ctx, st.server = o.tracer.Start(ctx, method, st.startOpts(o.server, r.Start)...)
	if !st.server.IsRecording() {
		if !st.server.SpanContext().IsSampled() {
			// No client span either (see AttemptStart): the attempts need only
			// UpstreamRequest, which sends the server span's context.
			r.Skip = observe.EventAttemptStart | observe.EventAttemptEnd
		}
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
	var st *state
	switch d := r.Data.(type) {
	case *dropTraceparent:
		if h != nil {
			h.Set(traceparentField, d.String())
		}
		return
	case *unsampled:
		if h != nil {
			o.injectUnsampled(d, h)
		}
		return
	case *state:
		st = d
	default:
		return
	}
	if h != nil {
		o.inject(st, h)
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
	var st *state
	switch d := r.Data.(type) {
	case *dropTraceparent:
		r.Data = nil
		return
	case *unsampled:
		r.Data = nil
		d.sc, d.ctx, d.tp = trace.SpanContext{}, nil, ""
		o.unsampled.Put(d)
		return
	case *state:
		st = d
	default:
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
		if r.GRPC {
			attrs = o.grpcEnd(span, r, attrs)
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
	st.tp = ""
	o.states.Put(st)
}

// grpcEnd appends to attrs the RPC attributes of a gRPC call (r.GRPC), whose HTTP
// status says little (200 for most failures): the system, the method (as "_OTHER" with
// the original name, since a proxy cannot tell which methods its peers define, as the
// semantic conventions ask then) and the grpc-status the client got, by its name. A
// status that the conventions count as a server's error (UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) sets the span's status to Error and
// error.type to the status's name, unless the HTTP status did already.
func (o *Observer) grpcEnd(span trace.Span, r *observe.Request, attrs []attribute.KeyValue) []attribute.KeyValue {
	code := grpcCodeName(r.GRPCStatus)
	attrs = append(attrs, semconv.RPCSystemNameGRPC, semconv.RPCResponseStatusCode(code))
	if path, _ := splitTarget(r.Target); len(path) > 1 && path[0] == '/' && strings.IndexByte(path[1:], '/') > 0 {
		attrs = append(attrs, rpcMethodOther, semconv.RPCMethodOriginal(strings.Clone(path[1:])))
	}
	if grpcServerError(r.GRPCStatus) && r.Status < 500 {
		if r.Err == nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(code))
		}
		span.SetStatus(codes.Error, "grpc-status "+code)
	}
	return attrs
}

// drop asks o.sampler whether to trace the request, with the parameters the SDK's
// tracer would give it for the server span, and reports whether it dropped it; if so,
// r.Data is what the request's upstream requests carry. u, if not nil, is the
// unsampled value that extracted ctx (with a propagator not W3C's alone): it becomes
// r.Data if the request is dropped, else the caller puts it back. A request dropped
// gets, as the SDK's tracer would give its span, the client's trace id (or a new one),
// a new span id, the client's flags without the sampled flag and the tracestate the
// sampler returned (the client's, for the SDK's samplers).
func (o *Observer) drop(r *observe.Request, u *unsampled, ctx context.Context, parent trace.SpanContext, name string) bool {
	if !o.w3c {
		parent = trace.SpanContextFromContext(ctx)
	}
	tid := parent.TraceID()
	if !tid.IsValid() {
		tid = newTraceID()
	}
	pctx := ctx
	if o.w3c && parent.IsValid() {
		if o.spanKey != nil {
			u = o.unsampled.Get().(*unsampled)
			u.pctx.span.sc = parent
			pctx = &u.pctx
		} else {
			pctx = trace.ContextWithRemoteSpanContext(ctx, parent)
		}
	}
	drop, state := o.sampler(SamplingParameters{
		ParentContext: pctx,
		TraceID:       tid,
		Name:          name,
		Kind:          trace.SpanKindServer,
	})
	if u != nil {
		u.pctx.span.sc = trace.SpanContext{}
	}
	if !drop {
		if o.w3c && u != nil {
			o.unsampled.Put(u)
		}
		return false
	}
	sid, flags := newSpanID(), parent.TraceFlags()&^trace.FlagsSampled
	if o.w3c && state.Len() == 0 {
		if u != nil {
			o.unsampled.Put(u)
		}
		tp := new(dropTraceparent)
		formatIDs((*[traceparentLen]byte)(tp), tid, sid, flags)
		r.Data = tp
		// Only UpstreamRequest is needed from here: tp needs no putting back.
		r.Skip = observe.EventAttemptStart | observe.EventAttemptEnd | observe.EventRequestEnd
		return true
	}
	if u == nil {
		u = o.unsampled.Get().(*unsampled)
	}
	u.sc = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: state})
	u.ctx = ctx
	r.Data = u
	r.Skip = observe.EventAttemptStart | observe.EventAttemptEnd // (RequestEnd puts u back)
	return true
}

// inject writes the trace context of st's attempt into the upstream request's header
// h: the client span's, or without one the server span's, not sampled (formatted once
// for all the attempts).
func (o *Observer) inject(st *state, h observe.Header) {
	ctx := st.clientCtx
	if st.client == nil {
		ctx = st.ctx
	}
	if !o.w3c {
		st.carrier.Header = h
		o.prop.Inject(ctx, &st.carrier)
		st.carrier.Header = nil
		return
	}
	sc := trace.SpanContextFromContext(ctx)
	if st.client != nil {
		injectW3C(h, sc, "")
	} else {
		st.tp = injectW3C(h, sc, st.tp)
	}
}

// injectUnsampled writes the trace context of a request Options.Sampler dropped into
// the upstream request's header h.
func (o *Observer) injectUnsampled(u *unsampled, h observe.Header) {
	if o.w3c {
		u.tp = injectW3C(h, u.sc, u.tp)
		return
	}
	u.carrier.Header = h
	o.prop.Inject(trace.ContextWithSpanContext(u.ctx, u.sc), &u.carrier)
	u.carrier.Header = nil
}

// remoteParent returns ctx with parent as its remote span context, as
// trace.ContextWithRemoteSpanContext does but in one allocation instead of two (the
// context and the span). It is the request's own, not pooled: the tracer may keep it.
func (o *Observer) remoteParent(ctx context.Context, parent trace.SpanContext) context.Context {
	if o.spanKey == nil {
		return trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return &parentCtx{Context: ctx, key: o.spanKey, marker: o.marker, span: parentSpan{sc: parent}}
}

// newParentCtx returns a parentCtx for a state of o.
func (o *Observer) newParentCtx() parentCtx {
	return parentCtx{Context: context.Background(), key: o.spanKey, marker: o.marker}
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
