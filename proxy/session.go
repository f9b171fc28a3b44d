package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/cache"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// ErrResponseSent is returned when a phase tries to write a response after one was sent.
var ErrResponseSent = errors.New("proxy: response already sent")

// ErrBodyTooLarge is the cause of the error [Session.BufferRequestBody] returns when the
// body exceeds the limit: test for it with errors.Is. The error returned is a new
// *[Error] each time (HTTPStatus, Downstream, Status 413) that wraps it, so a phase may
// change that one; returned from a phase it answers the client with 413.
var ErrBodyTooLarge = errors.New("proxy: request body too large")

// bodyTooLarge returns a fresh error for a request body over its limit.
func bodyTooLarge() *Error {
	return &Error{Type: HTTPStatus, Source: Downstream, Status: 413, Cause: ErrBodyTooLarge}
}

// Timing records when the steps of a request happened. Zero times did not happen.
type Timing struct {
	// Start is when the request arrived: when the proxy saw the first bytes of its head
	// (taken once for all the requests seen at that moment), or had read the head.
	Start time.Time
	// UpstreamConnected is when the connection to the (last) peer was ready.
	UpstreamConnected time.Time
	// UpstreamResponse is when the response head from the peer had been read.
	UpstreamResponse time.Time
	// End is when the response had been written (set before Logging runs).
	End time.Time
}

// Session is one request and its response as seen by the phases: the request head (to
// read and change), the client's and server's addresses, the response sent, timing, and
// ways to answer the client directly. A Session is valid only during the phases of its
// request and is reused afterwards: do not keep it. It is not safe for concurrent use.
type Session struct {
	req        message.RequestHeader
	clientAddr net.Addr
	serverAddr net.Addr
	tls        *tls.ConnectionState // the client connection's; nil without TLS

	ds      downstream   // the client side: an HTTP/1.x connection or an HTTP/2 stream, or gw
	gw      grpcWeb      // the gRPC-web bridge, when on (see BridgeGRPCWeb)
	closing *atomic.Bool // the service is shutting down
	date    *dateCache   // the service's Date field value

	timing         Timing
	status         int
	upstreamStatus int
	respStarted    bool
	bodyBuffered   bool
	body           []byte
	bodyRead       bool // some request body bytes were consumed from the client
	expect100      bool
	upgrade        string // the protocol of an Upgrade the proxy carries ("websocket"), or ""
	teTrailers     bool   // an HTTP/2 client sent "te: trailers" (gRPC)
	h2Tunnel       bool   // an HTTP/2 CONNECT or extended CONNECT: the stream is a tunnel
	badProtocol    bool   // an extended CONNECT for a protocol other than WebSocket
	wsKey          string // the Sec-WebSocket-Key the proxy made up for an HTTP/1.1 peer
	sent100        bool
	reqBodyKind    h1.BodyKind
	reqBodyLen     int64
	bodyTimeout    time.Duration
	rate           bodyRate // the minimum rate of the request body (HTTP/1.x clients)
	closeAfter     bool
	requestIndex   int
	peer           *Peer
	reused         bool
	retries        int
	bytesSent      int64
	bytesReceived  int64
	grpcStatus     int // the grpc-status the client got, if grpcStatusSet
	grpcStatusSet  bool
	scratchHeader  message.ResponseHeader
	cacheStatus    CacheStatus
	cache          *cache.Cache // the request's cache (RequestCacheFilter's), if any
}

func (s *Session) reset() {
	s.req.Reset()
	s.timing = Timing{}
	s.status, s.upstreamStatus = 0, 0
	s.respStarted = false
	s.bodyBuffered = false
	s.body = s.body[:0]
	s.bodyRead = false
	s.expect100, s.sent100 = false, false
	s.upgrade, s.teTrailers = "", false
	s.h2Tunnel, s.badProtocol, s.wsKey = false, false, ""
	s.closeAfter = false
	s.peer = nil
	s.reused = false
	s.retries = 0
	s.bytesSent, s.bytesReceived = 0, 0
	s.grpcStatus, s.grpcStatusSet = 0, false
	s.rate = bodyRate{}
	s.scratchHeader.Reset()
	s.cacheStatus, s.cache = CacheOff, nil
	if s.gw.on {
		s.ds = s.gw.inner
	}
	if s.gw.on || s.gw.inner != nil {
		s.gw.reset()
	}
}

// transport returns the client side under the gRPC-web bridge, if it is on.
func (s *Session) transport() downstream {
	if s.gw.on {
		return s.gw.inner
	}
	return s.ds
}

// Request returns the request head as received from the client, after the framework's
// checks (hop-by-hop fields and untrusted X-Forwarded-* fields are already removed).
// Phases may change it until UpstreamPeer; the request sent upstream starts as a copy.
func (s *Session) Request() *message.RequestHeader { return &s.req }

// Upgrade returns "websocket" if the request opens a WebSocket: an HTTP/1.1 GET with
// Upgrade: websocket (the Upgrade and Connection fields themselves are not in
// [Session.Request], being hop-by-hop), or an HTTP/2 extended CONNECT with :protocol
// websocket (RFC 8441), which the phases see as such a GET. Otherwise "".
func (s *Session) Upgrade() string { return s.upgrade }

// ClientAddr returns the client's address.
func (s *Session) ClientAddr() net.Addr { return s.clientAddr }

// ServerAddr returns the local address the client connected to.
func (s *Session) ServerAddr() net.Addr { return s.serverAddr }

// Timing returns when the steps of the request happened.
func (s *Session) Timing() Timing { return s.timing }

// clock returns the time, read from the monotonic clock alone as an offset from the
// request's start: half the cost of time.Now, which reads the wall clock too.
func (s *Session) clock() time.Time {
	if s.timing.Start.IsZero() {
		return time.Now()
	}
	return s.timing.Start.Add(time.Since(s.timing.Start))
}

// Status returns the status sent to the client. It is 0 if no response was sent: none
// yet, or none at all (a request cut short as the service closed, see [ErrShutdown]), or
// one the proxy could not write whole in one piece (an error page, Respond or
// WriteResponse) because the client was gone; except that a request whose client reset
// it or went away before its response started reports [StatusClientClosedRequest] (499),
// though nothing was sent. A streamed response counts from the moment its head is handed
// to the connection.
func (s *Session) Status() int { return s.status }

// GRPCStatus returns the gRPC status code (the grpc-status field) the client got, and
// whether it got one: from the proxy's own answer to a gRPC call that failed (a
// "trailers-only" response, see ErrorStatus for the mapping), from a response a phase
// wrote with Respond or WriteResponse, or from the peer's response as relayed (its
// trailers, or its head for a trailers-only response). ok is false for a request that is
// not gRPC, or whose response ended without a status (cut short, say).
func (s *Session) GRPCStatus() (code int, ok bool) { return s.grpcStatus, s.grpcStatusSet }

// noteGRPCStatus records the grpc-status field of h, if it has a valid one, as the one
// the client got.
func (s *Session) noteGRPCStatus(h *message.Header) {
	v, ok := h.Lookup("Grpc-Status")
	if !ok || len(v) == 0 || len(v) > 4 {
		return
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return
		}
		n = n*10 + int(v[i]-'0')
	}
	s.grpcStatus, s.grpcStatusSet = n, true
}

// UpstreamStatus returns the status of the last response head read from a peer (before
// any phase changed it), or 0 if none was read.
func (s *Session) UpstreamStatus() int { return s.upstreamStatus }

// ResponseWritten reports whether a response (or its head) has been sent to the client.
func (s *Session) ResponseWritten() bool { return s.respStarted }

// BytesSent returns the number of response body bytes written to the client (for a
// tunnel, the bytes sent to the client through it); a response the proxy failed to
// write (see Status) counts none.
func (s *Session) BytesSent() int64 { return s.bytesSent }

// BytesReceived returns the number of request body bytes read from the client, without
// the chunked framing, whether a phase read them or they were streamed to a peer (for a
// tunnel, a CONNECT or a WebSocket, the bytes the client sent through it).
func (s *Session) BytesReceived() int64 { return s.bytesReceived }

// RequestIndex returns how many requests the client connection served before this one
// (0 for the first).
func (s *Session) RequestIndex() int { return s.requestIndex }

// Peer returns the peer of the last attempt, or nil if none was chosen.
func (s *Session) Peer() *Peer { return s.peer }

// UpstreamReused reports whether the last attempt used a pooled upstream connection.
func (s *Session) UpstreamReused() bool { return s.reused }

// Retries returns the number of retries made so far.
func (s *Session) Retries() int { return s.retries }

// HasRequestBody reports whether the request has a body (Content-Length above zero, or
// chunked).
func (s *Session) HasRequestBody() bool { return s.reqBodyKind != h1.BodyNone }

// BufferRequestBody reads the whole request body into memory, up to limit bytes, and
// returns it. The framework then sends exactly these bytes upstream, which also makes the
// request retryable on another peer when its method is idempotent. A body longer than
// limit gives an error that wraps [ErrBodyTooLarge]. Call it from RequestFilter or a
// later phase before UpstreamPeer; calling it again returns the same bytes. The returned
// slice is valid until the request ends.
func (s *Session) BufferRequestBody(limit int64) ([]byte, error) {
	if s.bodyBuffered {
		return s.body, nil
	}
	if s.bodyRead {
		return nil, errors.New("proxy: request body was already streamed")
	}
	if s.reqBodyKind == h1.BodyNone {
		s.bodyBuffered = true
		return s.body, nil
	}
	if s.reqBodyKind == h1.BodyLength && s.reqBodyLen > limit {
		s.closeAfter = true
		return nil, bodyTooLarge()
	}
	if err := s.send100(); err != nil {
		return nil, err
	}
	s.bodyRead = true
	for {
		if s.ds.willWait() { // the read waits on the client
			now := time.Now()
			s.ds.readTimeout(now, s.rate.wait(now, s.bodyTimeout, s.bytesReceived))
		}
		chunk, err := s.readBody()
		err = s.rate.end(err)
		if int64(len(s.body)+len(chunk)) > limit {
			s.closeAfter = true
			return nil, bodyTooLarge()
		}
		s.body = append(s.body, chunk...)
		if err == io.EOF {
			break
		}
		if err != nil {
			s.closeAfter = true
			return nil, clientReadError(err)
		}
	}
	s.bodyBuffered = true
	return s.body, nil
}

// readBody returns the next piece of the request body from the client (see
// downstream.readBody), counting it in BytesReceived. Every read of the body goes
// through it.
func (s *Session) readBody() ([]byte, error) {
	b, err := s.ds.readBody()
	s.received(b)
	return b, err
}

// received counts b, a piece of the request body read from the client, in
// BytesReceived. (A read made on another goroutine is counted by the request's own.)
func (s *Session) received(b []byte) { s.bytesReceived += int64(len(b)) }

// discardBody reads and drops a small unread request body, so that the connection can
// serve the next request; it reports whether that worked.
func (s *Session) discardBody() bool {
	const limit = 256 << 10
	n := 0
	s.ds.readTimeout(time.Now(), s.bodyTimeout)
	for n <= limit {
		b, err := s.readBody()
		n += len(b)
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// send100 answers "Expect: 100-continue" before the first read of the body.
func (s *Session) send100() error {
	if !s.expect100 || s.sent100 || s.respStarted {
		return nil
	}
	s.sent100 = true
	if err := s.ds.continue100(); err != nil {
		return asError(err, WriteError, Downstream)
	}
	return nil
}

// Respond answers the client with status and a body of content type text/plain. It is
// meant for RequestFilter and the failure phases; return [Handled] after it.
func (s *Session) Respond(status int, body string) error {
	h := &s.scratchHeader
	h.Reset()
	h.Status = status
	h.Header.Set("Content-Type", "text/plain; charset=utf-8")
	return s.writeWhole(h, nil, body)
}

// WriteResponse answers the client with resp and body. Content-Length is set from body
// (any Transfer-Encoding removed), and the framework adds Connection as needed. It is
// meant for RequestFilter and the failure phases; return [Handled] after it.
func (s *Session) WriteResponse(resp *message.ResponseHeader, body []byte) error {
	return s.writeWhole(resp, body, "")
}

func (s *Session) writeWhole(resp *message.ResponseHeader, body []byte, sbody string) error {
	if s.respStarted {
		return ErrResponseSent
	}
	if resp.Status < 200 || resp.Status > 999 {
		return &Error{Type: InternalError, Source: Internal, Cause: errors.New("proxy: invalid response status " + strconv.Itoa(resp.Status))}
	}
	n := len(body) + len(sbody)
	if err := validateHeader(&resp.Header); err != nil {
		return err
	}
	if !resp.Header.Has("Date") {
		// An origin with a clock dates its responses (RFC 9110 §6.6.1), and the proxy is
		// the origin of this one. The caller's header is not changed: a copy gets it.
		if resp != &s.scratchHeader {
			sh := &s.scratchHeader
			sh.Status, sh.Reason, sh.Version = resp.Status, resp.Reason, resp.Version
			sh.Header.CopyFrom(&resp.Header)
			resp = sh
		}
		resp.Header.Add("Date", s.date.get(time.Now()))
	}
	// A response written before the request body was read leaves that body unread:
	// the connection cannot be reused unless there was none.
	// (An HTTP/2 stream needs no such care: its end resets what the client still sends.)
	if _, h2 := s.transport().(*h2down); !h2 && s.reqBodyKind != h1.BodyNone && !s.bodyBuffered && !s.ds.bodyDone() {
		if s.bodyRead || (s.expect100 && !s.sent100) || !s.discardBody() {
			s.closeAfter = true
		}
	}
	s.respStarted = true
	d := s.ds
	noBody := s.req.Method == "HEAD" || bodyless(resp.Status)
	kind := h1.BodyLength
	if noBody {
		kind = h1.BodyNone
	}
	if err := d.writeHead(s, resp, kind, int64(n)); err != nil {
		s.closeAfter = true
		return asError(err, WriteError, Downstream)
	}
	var err error
	if !noBody {
		if len(body) > 0 {
			err = d.writeBody(body)
		}
		if err == nil && len(sbody) > 0 {
			err = d.writeBody([]byte(sbody))
		}
	}
	if err == nil {
		err = d.finish(nil)
	}
	if err == nil {
		err = d.flush()
	}
	if err != nil {
		// The client got no usable response (at most part of it): Status and BytesSent
		// say none was sent.
		s.closeAfter = true
		return asError(err, WriteError, Downstream)
	}
	s.status = resp.Status
	if !noBody {
		s.bytesSent += int64(n)
	}
	s.noteGRPCStatus(&resp.Header)
	return nil
}

// dateCache makes the value of the Date field of the responses a service writes itself:
// formatted once a second, not per response.
type dateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64  // the Unix second it is for
	s   string // in the IMF-fixdate format (RFC 9110 §5.6.7)
}

// get returns the Date value for now.
func (d *dateCache) get(now time.Time) string {
	sec := now.Unix()
	if v := d.v.Load(); v != nil && v.sec == sec {
		return v.s
	}
	v := &dateValue{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	d.v.Store(v)
	return v.s
}

func bodyless(status int) bool {
	return status < 200 || status == 204 || status == 304
}

func clientReadError(err error) *Error {
	var he *h1.Error
	if errors.As(err, &he) {
		return &Error{Type: InvalidHTTP, Source: Downstream, Status: he.Status, Cause: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &Error{Type: ConnectionClosed, Source: Downstream, Cause: err}
	}
	return asError(err, ReadError, Downstream)
}
