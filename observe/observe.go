package observe

import (
	"crypto/tls"
	"time"
)

// Observer receives the events of the requests of the services it is registered on
// (see the package doc for their order). Embed [Base] to implement only some of them.
type Observer interface {
	// RequestStart is called once the request head was read, before the first phase.
	RequestStart(r *Request)
	// AttemptStart is called when UpstreamPeer chose a peer for an attempt, before the
	// connection to it.
	AttemptStart(r *Request, a *Attempt)
	// UpstreamRequest is called when the head to send to the peer is built, after the
	// UpstreamRequestFilter phase; h is that head's fields, which the observer may add
	// to (a trace context, say). Fields it sets are not checked as the phases' are: set
	// only valid names and values.
	UpstreamRequest(r *Request, a *Attempt, h Header)
	// AttemptEnd is called when the attempt ended: its response relayed, or failed
	// (a.Err).
	AttemptEnd(r *Request, a *Attempt)
	// RequestEnd is called when the request ended, before the Logging phase.
	RequestEnd(r *Request)
}

// Events is a set of the request events of an [Observer].
type Events uint8

// The request events, one bit each.
const (
	EventRequestStart Events = 1 << iota
	EventAttemptStart
	EventUpstreamRequest
	EventAttemptEnd
	EventRequestEnd

	// AllEvents is every request event.
	AllEvents = EventRequestStart | EventAttemptStart | EventUpstreamRequest | EventAttemptEnd | EventRequestEnd
)

// EventFilter is implemented by an observer that uses only some of the request events:
// a service calls it for those only, and an event no observer of a service uses costs
// that service nothing. An observer without it gets every event. ObservedEvents is
// called once, when the observer is registered.
type EventFilter interface {
	ObservedEvents() Events
}

// Base implements [Observer] with methods that do nothing, for embedding.
type Base struct{}

// RequestStart does nothing.
func (Base) RequestStart(*Request) {}

// AttemptStart does nothing.
func (Base) AttemptStart(*Request, *Attempt) {}

// UpstreamRequest does nothing.
func (Base) UpstreamRequest(*Request, *Attempt, Header) {}

// AttemptEnd does nothing.
func (Base) AttemptEnd(*Request, *Attempt) {}

// RequestEnd does nothing.
func (Base) RequestEnd(*Request) {}

// Header is a message's header fields, as an observer sees them. The proxy's
// message.Header implements it. Names are matched without regard to case.
type Header interface {
	// Get returns the value of the first field named name, or "".
	Get(name string) string
	// Set replaces the fields named name with one.
	Set(name, value string)
	// Range calls f for each field in order until f returns false.
	Range(f func(name, value string) bool)
}

// Request is one request as observers see it. The service fills it and owns it; the
// fields marked "at RequestEnd" are set just before that event, the others before
// RequestStart.
type Request struct {
	// Service is the service's name.
	Service string
	// Proto is the client's protocol: "HTTP/1.0", "HTTP/1.1" or "HTTP/2"; "" for a
	// request head the proxy refused before reading it whole (malformed, too large or
	// too slow: see the package doc).
	Proto string
	// Scheme is "https" on a TLS endpoint, "http" otherwise.
	Scheme string
	// Method, Target and Host are the request's method, request-target (path and
	// query, as sent) and Host field (":authority" over HTTP/2).
	Method, Target, Host string
	// Client is the client's IP address, without its port; "" on a Unix socket.
	Client string
	// Header is the request's header fields: at RequestStart as the proxy received
	// them (after its checks), later as the phases changed them. Observers must not
	// change them.
	Header Header
	// Upgrade is "websocket" for a WebSocket, otherwise "".
	Upgrade string
	// Start is when the request arrived.
	Start time.Time

	// Data is the observer's own value for this request: what an observer stores in it
	// at one event is there at the request's next events, for that observer alone
	// (each observer has its own). It starts nil.
	Data any
	// Skip is the events of this request the observer needs no more: it may set bits
	// in it at any event, and the service does not call it for those events of this
	// request after that one; when no observer needs an event, the service does not
	// prepare it either. Like Data, each observer has its own, and it starts 0. (A
	// tracer that drops a request needs only UpstreamRequest after RequestStart, to
	// send the trace context on.) An observer that skips RequestEnd leaves nothing in
	// Data that needs it.
	Skip Events

	// End is when the response was written, at RequestEnd.
	End time.Time
	// Status is the status the client got, at RequestEnd; 0 if none (see
	// proxy.Session.Status; 499 for a client that left).
	Status int
	// GRPCStatus is the grpc-status the client got, if GRPC is true, at RequestEnd.
	GRPCStatus int
	GRPC       bool
	// Attempts is the number of attempts made (AttemptStart events), at RequestEnd:
	// 0 for a request answered without a peer; retries are Attempts-1.
	Attempts int
	// Upstream is the address of the last attempt's peer, at RequestEnd; "" if none.
	Upstream string
	// UpstreamStatus is the status of the last response head a peer sent, at
	// RequestEnd; 0 if none.
	UpstreamStatus int
	// Reused reports whether the last attempt used a pooled connection, at RequestEnd.
	Reused bool
	// Cache is what the HTTP cache did for the request, at RequestEnd: "hit", "miss",
	// "collapsed", "revalidated", "expired", "stale", "bypass" or "purge" (see
	// proxy.CacheStatus); "" when no cache took part.
	Cache string
	// BytesSent and BytesReceived are the body bytes sent to and received from the
	// client (through a tunnel, its bytes each way), at RequestEnd.
	BytesSent, BytesReceived int64
	// Connected and FirstByte are when the last attempt's connection was ready and
	// when its response head had been read, at RequestEnd; zero if that did not
	// happen.
	Connected, FirstByte time.Time
	// Err is the request's error, at RequestEnd (nil for success): what the Logging
	// phase gets. ErrType and ErrSource name its kind and side as the String methods
	// of proxy.ErrorType and proxy.ErrorSource do ("connection refused", "upstream"),
	// "" without one.
	Err                error
	ErrType, ErrSource string
	// Panic is the value a phase panicked with, and Stack where, at RequestEnd; nil if
	// none did.
	Panic any
	Stack []byte
}

// Duration returns how long the request took, at RequestEnd.
func (r *Request) Duration() time.Duration { return r.End.Sub(r.Start) }

// TTFB returns the time from the request's start to the first byte of the last
// attempt's response head (the upstream's time to first byte, as the client's waiting
// counts it), at RequestEnd; 0 if no response head arrived.
func (r *Request) TTFB() time.Duration {
	if r.FirstByte.IsZero() {
		return 0
	}
	return r.FirstByte.Sub(r.Start)
}

// Attempt is one attempt to have a peer answer a request. The service fills it and owns
// it; the fields marked "at AttemptEnd" are set just before that event.
type Attempt struct {
	// N counts the request's attempts from 0.
	N int
	// Peer is the peer's address (host:port, or a Unix socket's path), and Name its
	// TLS server name ("" without TLS).
	Peer, Name string
	// TLS reports whether the connection to the peer uses TLS.
	TLS bool
	// Start is when the peer was chosen.
	Start time.Time
	// Data is the observer's own value for this attempt, as Request.Data is for the
	// request; it starts nil at each attempt.
	Data any

	// Proto is the protocol spoken with the peer ("HTTP/1.1", "HTTP/2"), at
	// UpstreamRequest.
	Proto string

	// End is when the attempt ended, at AttemptEnd.
	End time.Time
	// Reused reports whether the attempt took a pooled connection, and Connected when
	// its connection was ready (zero if none was), at AttemptEnd. (Over HTTP/2 the
	// connection is taken after UpstreamRequest.)
	Reused    bool
	Connected time.Time
	// FirstByte is when the response head had been read, at AttemptEnd; zero if none
	// came.
	FirstByte time.Time
	// Status is the peer's status, at AttemptEnd; 0 if none.
	Status int
	// Err is the attempt's error, at AttemptEnd (nil for success), and ErrType its
	// kind as proxy.ErrorType's String names it ("connection refused").
	Err     error
	ErrType string
}

// ConnObserver is an [Observer] that also sees connections: the service calls these
// methods on its observers that implement it. The calls for one connection run in
// order and never overlap; Conn.Data is the observer's own, as Request.Data is.
type ConnObserver interface {
	// ConnOpen is called when a client connection was accepted.
	ConnOpen(c *Conn)
	// ConnTLS is called when a client connection's TLS handshake ended: c.TLS is its
	// state, or c.Err why it failed (the connection then closes).
	ConnTLS(c *Conn)
	// ConnClose is called when a client connection closed. c.Proto is the protocol it
	// served ("" if it served none).
	ConnClose(c *Conn)
	// UpstreamConn is called for each new connection to a peer, once it is ready or
	// failed (c.Err); c.Upstream is true. It may run on a goroutine of the connection
	// pool, not a request's.
	UpstreamConn(c *Conn)
}

// Conn is a connection as observers see it. The service fills it and owns it.
type Conn struct {
	// Service is the service's name.
	Service string
	// Upstream reports a connection to a peer; otherwise it is a client's.
	Upstream bool
	// Remote is the other side's address (the client's IP and port, or the peer's
	// address), Local the service's.
	Remote, Local string
	// Proto is the protocol spoken ("HTTP/1.1", "HTTP/2"), once known.
	Proto string
	// Start is when the connection was accepted or the dial began.
	Start time.Time
	// Connected is when the TCP (or Unix) connection was up, for an upstream one.
	Connected time.Time
	// Handshake is how long the TLS handshake took, 0 without TLS.
	Handshake time.Duration
	// TLS is the connection's TLS state after its handshake; nil without TLS or before.
	TLS *tls.ConnectionState
	// Err is why the connection failed: its TLS handshake (ConnTLS) or its dial
	// (UpstreamConn); nil otherwise.
	Err error
	// Requests is the number of requests the client connection served, at ConnClose.
	Requests int
	// BytesSent and BytesReceived are, at ConnClose of a TCP service's connection
	// (package l4, Proto "TCP"), the bytes relayed to the client and from it. They are
	// 0 for an HTTP service's connections, whose requests report their own
	// (Request.BytesSent and BytesReceived): an observer adds both without counting a
	// byte twice.
	BytesSent, BytesReceived int64
	// Data is the observer's own value for the connection.
	Data any
}
