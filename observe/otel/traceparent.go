package otel

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gotthard-proxy/gotthard/observe"
)

// The W3C Trace Context fields (https://www.w3.org/TR/trace-context/).
const (
	traceparentField = "traceparent"
	tracestateField  = "tracestate"
	// traceparentLen is the length of a version 00 traceparent:
	// "00-" trace-id (32) "-" parent-id (16) "-" flags (2).
	traceparentLen = 55
)

// hexRev maps a lowercase hexadecimal digit to its value and anything else
// (upper-case A-F included: the specification disallows them) to 0xff.
var hexRev = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// parseHex decodes the 2*len(dst) hexadecimal digits at the start of s into dst and
// returns the rest of s after them and the '-' that must follow unless s ends there;
// ok is false if s does not start so.
func parseHex(dst []byte, s string) (rest string, ok bool) {
	n := 2 * len(dst)
	if len(s) < n || len(s) > n && s[n] != '-' {
		return "", false
	}
	rest = s[n:]
	if rest != "" {
		rest = rest[1:]
	}
	s = s[:n]
	var bad byte
	for i := range dst {
		hi, lo := hexRev[s[2*i]], hexRev[s[2*i+1]]
		dst[i] = hi<<4 | lo
		bad |= hi | lo
	}
	return rest, bad&0xf0 == 0
}

// parseTraceparent parses a traceparent field's value as the OpenTelemetry W3C
// propagator (propagation.TraceContext) does, without allocating: a version from 00
// to fe, a trace id and a parent id not all zeros, flags; version 00 has nothing
// after its flags and only the sampled and random flags, a later version may have
// more fields after them. Only the sampled and random flags are kept. ok is false
// for a value the propagator would ignore.
func parseTraceparent(v string) (tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags, ok bool) {
	var ver, fl [1]byte
	rest, ok := parseHex(ver[:], v)
	if !ok || ver[0] == 0xff {
		return tid, sid, 0, false
	}
	if rest, ok = parseHex(tid[:], rest); !ok {
		return tid, sid, 0, false
	}
	if rest, ok = parseHex(sid[:], rest); !ok {
		return tid, sid, 0, false
	}
	// The flags end the value or are followed by '-' and, from version 01 on, more
	// fields; version 00 has no more (the propagator takes a '-' ending it as ending
	// the flags).
	if rest, ok = parseHex(fl[:], rest); !ok {
		return tid, sid, 0, false
	}
	if ver[0] == 0 && (rest != "" || fl[0] > 3) {
		return tid, sid, 0, false
	}
	if !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, trace.TraceFlags(fl[0]) & (trace.FlagsSampled | trace.FlagsRandom), true
}

// extractW3C reads the client's trace context from h as propagation.TraceContext's
// Extract does: a remote span context from the first traceparent field, with the
// tracestate if it parses (parsing it allocates; there is nothing to parse without
// one); an invalid span context if there is no valid traceparent.
func extractW3C(h observe.Header) trace.SpanContext {
	if h == nil {
		return trace.SpanContext{}
	}
	tid, sid, flags, ok := parseTraceparent(h.Get(traceparentField))
	if !ok {
		return trace.SpanContext{}
	}
	// The specification: failing to parse tracestate must not affect traceparent.
	ts, _ := trace.ParseTraceState(h.Get(tracestateField))
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: ts, Remote: true,
	})
}

// formatTraceparent writes sc's traceparent, version 00, into b as
// propagation.TraceContext's Inject writes it: only the sampled and random flags.
func formatTraceparent(b *[traceparentLen]byte, sc trace.SpanContext) {
	formatIDs(b, sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// formatIDs writes the version 00 traceparent of a span context of trace id tid, span
// id sid and flags into b (see formatTraceparent).
func formatIDs(b *[traceparentLen]byte, tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags) {
	b[0], b[1], b[2] = '0', '0', '-'
	for i := 0; i < 4; i++ {
		hex8(b[3+8*i:], binary.BigEndian.Uint32(tid[4*i:]))
	}
	b[35] = '-'
	hex8(b[36:], binary.BigEndian.Uint32(sid[:]))
	hex8(b[44:], binary.BigEndian.Uint32(sid[4:]))
	f := byte(flags & (trace.FlagsSampled | trace.FlagsRandom))
	b[52], b[53], b[54] = '-', hexDigits[f>>4], hexDigits[f&0xf]
}

// hex8 writes v as 8 lowercase hexadecimal digits into dst, all at once: each nibble
// is spread into a byte of its own, then turned into its digit ('0' + n, plus the gap
// from '9'+1 to 'a' for n >= 10) without a branch or a table.
func hex8(dst []byte, v uint32) {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	letters := (x + 0x0606060606060606) >> 4 & 0x0101010101010101 // 1 in each byte >= 10
	binary.BigEndian.PutUint64(dst, x+0x3030303030303030+letters*('a'-'9'-1))
}

// injectW3C writes sc into h as propagation.TraceContext's Inject does: nothing for
// an invalid span context, else its tracestate if it has one and its traceparent.
// tp, if not "", is sc's traceparent already formatted; injectW3C returns the one it
// wrote, for the next attempt.
func injectW3C(h observe.Header, sc trace.SpanContext, tp string) string {
	if !sc.IsValid() {
		return tp
	}
	if sc.TraceState().Len() > 0 {
		h.Set(tracestateField, sc.TraceState().String())
	}
	if tp == "" {
		var buf [traceparentLen]byte
		formatTraceparent(&buf, sc)
		tp = string(buf[:])
	}
	h.Set(traceparentField, tp)
	return tp
}

// newTraceID returns a random trace id, not all zeros, as the SDK's default ID
// generator makes them.
func newTraceID() (tid trace.TraceID) {
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid
}

// newSpanID returns a random span id, not all zeros.
func newSpanID() (sid trace.SpanID) {
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// parentSpan is the span a parentCtx holds: no span, only the client's span context,
// as trace.ContextWithRemoteSpanContext holds it. Its other methods do nothing.
type parentSpan struct {
	embedded.Span // nil: its methods are never called
	sc            trace.SpanContext
}

var _ trace.Span = (*parentSpan)(nil)

// SpanContext returns the client's span context.
func (s *parentSpan) SpanContext() trace.SpanContext { return s.sc }

// IsRecording returns false.
func (*parentSpan) IsRecording() bool { return false }

// End does nothing.
func (*parentSpan) End(...trace.SpanEndOption) {}

// AddEvent does nothing.
func (*parentSpan) AddEvent(string, ...trace.EventOption) {}

// AddLink does nothing.
func (*parentSpan) AddLink(trace.Link) {}

// RecordError does nothing.
func (*parentSpan) RecordError(error, ...trace.EventOption) {}

// SetStatus does nothing.
func (*parentSpan) SetStatus(codes.Code, string) {}

// SetName does nothing.
func (*parentSpan) SetName(string) {}

// SetAttributes does nothing.
func (*parentSpan) SetAttributes(...attribute.KeyValue) {}

// TracerProvider returns a provider that does nothing, as the trace API's span of a
// remote span context does.
func (*parentSpan) TracerProvider() trace.TracerProvider { return noop.NewTracerProvider() }

// parentCtx is a context holding the client's span context, as
// trace.ContextWithRemoteSpanContext(ctx, sc) would, in one object instead of two. A
// request whose sampler drops it asks its sampler with one from the pool, handed to
// the sampler only, for the length of its call; a request that starts a span has
// its own.
type parentCtx struct {
	context.Context // the context it adds the span context to
	// key is a context in which the trace API's span key, and no other, leads to
	// marker: a key for which it does is that key.
	key    context.Context
	marker trace.Span
	span   parentSpan
}

// Value returns the parent span for the trace API's span key, and nothing else.
func (c *parentCtx) Value(key any) any {
	if c.key.Value(key) == c.marker {
		return &c.span
	}
	return c.Context.Value(key)
}

// spanKey returns a context with marker as its span and nothing else, for
// parentCtx.key.
func spanKey(marker trace.Span) context.Context {
	return trace.ContextWithSpan(context.Background(), marker)
}

// works reports whether c, given a span context, hands it to the trace API as the
// context's span context, and nothing for another key.
func (c parentCtx) works() bool {
	if c.key == nil {
		return false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	c.span.sc = sc
	type otherKey struct{}
	return trace.SpanContextFromContext(&c).Equal(sc) && c.Value(otherKey{}) == nil
}
