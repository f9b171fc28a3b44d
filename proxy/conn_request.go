package proxy

import (
	"errors"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// handle serves one request and reports whether the connection may serve another.
func (c *conn[C]) handle(ex *exchange[C]) (keep bool) {
	return c.handleHead(ex, c.r.ReadRequestHead(&ex.head))
}

// handleHead serves a request whose head was read into ex.head, with err.
func (c *conn[C]) handleHead(ex *exchange[C], err error) (keep bool) {
	if err != nil {
		return c.badHead(ex, err)
	}
	sess := &ex.sess
	if sess.timing.Start = c.wokenAt; c.wokenAt.IsZero() {
		sess.timing.Start = time.Now()
	}
	c.wokenAt = time.Time{}
	c.buildRequest(ex)
	if !ex.head.KeepAlive || c.served+1 >= c.maxRequests() {
		sess.closeAfter = true // (the last request of the connection says so in its response)
	}
	return c.serveRequest(ex)
}

// serveRequest runs the phases of a request whose head is in the session, whatever
// the client's protocol, and reports whether an HTTP/1.x connection may go on.
func (c *conn[C]) serveRequest(ex *exchange[C]) (keep bool) {
	s, sess := c.svc, &ex.sess
	ctx := s.ctx
	var cc C
	var reqErr error
	defer func() {
		if p := recover(); p != nil {
			perr := &Error{Type: InternalError, Source: Internal, Cause: panicError{p}}
			stack := debug.Stack()
			s.log.Error("panic in request", "err", perr, "method", sess.req.Method,
				"target", sess.req.Target, "client", c.clientS, "stack", string(stack))
			if ex.obs != nil {
				ex.obs.panic, ex.obs.stack = p, stack
			}
			sess.closeAfter = true
			if !sess.respStarted {
				c.writeErrorPage(sess, 500)
			}
			reqErr = perr
			keep = false
			c.logging(ctx, ex, cc, reqErr)
		}
	}()
	c.observeStart(ex)
	cc = s.app.NewCtx()
	reqErr = c.run(ctx, ex, cc)
	if reqErr != nil {
		c.fail(ctx, ex, cc, reqErr)
	}
	if !sess.closeAfter && sess.transport() == &c.h1 && !c.r.BodyDone() {
		// The request body was not read (a phase answered early): skip it if small,
		// otherwise close the connection.
		sess.closeAfter = !sess.discardBody()
	}
	c.logging(ctx, ex, cc, reqErr)
	return !sess.closeAfter
}

// logging tells the observers the request ended and runs the Logging phase, itself
// guarded against panics.
func (c *conn[C]) logging(ctx contextT, ex *exchange[C], cc C, err error) {
	sess := &ex.sess
	if sess.timing.End.IsZero() { // (set already when the upstream connection went idle)
		sess.timing.End = sess.clock()
	}
	if len(ex.mods) > 0 {
		c.modulesDone(ex)
	}
	c.observeEnd(ex, err)
	defer func() {
		if p := recover(); p != nil {
			c.svc.log.Error("panic in Logging phase", "err", p, "stack", string(debug.Stack()))
		}
	}()
	c.svc.app.Logging(ctx, sess, cc, err)
}

// headSampleMax bounds the copy of a bad request's head in its log line: enough to see
// what was wrong, not enough for a client to fill the log (Pingora bounds its own).
const headSampleMax = 256

// headSample returns the start of a head that could not be parsed, at most headSampleMax
// bytes, quoted as a Go string so that control bytes and line breaks cannot forge log
// lines; "..." marks a cut.
func headSample(b []byte) string {
	cut := len(b) > headSampleMax
	if cut {
		b = b[:headSampleMax]
	}
	s := strconv.QuoteToASCII(string(b))
	if cut {
		s += "..."
	}
	return s
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic: " + anyString(p.v) }

// badHead answers a request head that could not be read and ends the connection.
func (c *conn[C]) badHead(ex *exchange[C], err error) bool {
	var he *h1.Error
	switch {
	case errors.As(err, &he) && he.NotHTTP() && c.served == 0:
		// The first bytes are not HTTP/1.x at all (an invalid HTTP/2 preface, say): an
		// HTTP/1.1 error page would mean nothing to the client. Close (RFC 9113 §3.4).
		c.svc.log.Warn("not HTTP: connection closed", "client", c.clientS, "reason", he.Reason, "head", headSample(c.r.Peek()))
	case errors.As(err, &he):
		c.svc.log.Warn("bad request", "client", c.clientS, "status", he.Status, "reason", he.Reason, "head", headSample(c.r.Peek()))
		c.refuseHead(ex, &Error{Type: InvalidHTTP, Source: Downstream, Status: he.Status, Cause: err})
	case errors.Is(err, io.EOF):
		// Closed between requests: nothing to say.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && c.r.Buffered() > 0 {
			c.svc.log.Warn("request head timeout", "client", c.clientS)
			c.refuseHead(ex, &Error{Type: ReadTimeout, Source: Downstream, Status: 408, Cause: err})
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			c.svc.log.Warn("client closed connection mid-head", "client", c.clientS)
		}
	}
	return false
}

// refuseHead answers a request head that could not be taken (malformed, too large,
// or too slow to come) with e.Status's error page, and closes the connection after it.
// Observers see it as a request of its own, with no protocol, method, target or header
// fields (the head was not read whole), e as its error and the page's status; the phases,
// Logging included, do not run, as no request reached them.
func (c *conn[C]) refuseHead(ex *exchange[C], e *Error) {
	sess := &ex.sess
	sess.closeAfter = true
	if ex.obs == nil {
		c.writeErrorPage(sess, e.Status)
		return
	}
	if sess.timing.Start = c.wokenAt; c.wokenAt.IsZero() {
		sess.timing.Start = time.Now()
	}
	c.wokenAt = time.Time{}
	c.observeStart(ex)
	c.writeErrorPage(sess, e.Status)
	sess.timing.End = sess.clock()
	c.observeEnd(ex, e)
}

// buildRequest copies the parsed head into the session's request, doing the
// framework's protective work.
func (c *conn[C]) buildRequest(ex *exchange[C]) {
	h, sess, a := &ex.head, &ex.sess, ex.arena
	req := &sess.req
	req.Method = internMethod(h.Method, a)
	req.Version = message.HTTP11
	if h.Minor == 0 {
		req.Version = message.HTTP10
	}
	copyFields(&req.Header, h.Fields, a, !c.trusted, true)
	ex.reqKnown = knownFields(ex.reqKnown, &req.Header)
	// An absolute-form target (RFC 9112 §3.2.2) names the host itself: Host follows it,
	// and the target goes upstream in origin form, so that phases and the origin see the
	// same host.
	target := h.Target
	if authority, path, ok := splitAbsolute(target); ok {
		req.Header.Set("Host", a.String(authority))
		switch {
		case len(path) == 0:
			path = []byte("/")
		case path[0] == '?':
			path = append([]byte("/"), path...)
		}
		target = path
	}
	req.Target = a.String(target)
	// A Content-Length list of equal values ("5, 5") was accepted as one value: pass the
	// one value on.
	if (h.Body == h1.BodyLength || h.ContentLength > 0) && !h.ContentLengthPlain {
		normalizeContentLength(&req.Header, h.ContentLength, a)
	}
	sess.expect100 = h.Expect100 && h.Minor == 1
	if h.Minor == 1 && req.Method == "GET" {
		sess.upgrade = upgradeField(h.Upgrade, a)
	}
	sess.reqBodyKind = h.Body
	sess.reqBodyLen = h.ContentLength
}

// run runs the request phases and the proxying.
func (c *conn[C]) run(ctx contextT, ex *exchange[C], cc C) error {
	s, sess := c.svc, &ex.sess
	if err := s.app.EarlyRequestFilter(ctx, sess, cc); err != nil {
		return err
	}
	if sess.badProtocol {
		return &Error{Type: HTTPStatus, Source: Downstream, Status: 501,
			Cause: errors.New("proxy: extended CONNECT for a protocol other than websocket")}
	}
	if sess.req.Method == "CONNECT" {
		// Whatever the answer, the client may send tunnel bytes next: never reuse.
		sess.closeAfter = true
	}
	if sess.req.Method == "CONNECT" && !s.opts.AllowConnect {
		// Tunnels are not proxied: answering a CONNECT as a plain request could put a
		// tunnel into the upstream pool. The client may send tunnel bytes next: close.
		sess.closeAfter = true
		return &Error{Type: HTTPStatus, Source: Downstream, Status: 405,
			Cause: errors.New("proxy: CONNECT is not supported")}
	}
	if sess.req.Method == "TRACE" && !s.opts.AllowTrace {
		return &Error{Type: HTTPStatus, Source: Downstream, Status: 405,
			Cause: errors.New("proxy: TRACE is not allowed")}
	}
	if len(s.opts.Modules) > 0 {
		if done, err := c.moduleRequestFilters(ctx, ex); done || err != nil {
			return err
		}
	}
	res, err := s.app.RequestFilter(ctx, sess, cc)
	if err != nil {
		return err
	}
	if res == Handled {
		if !sess.respStarted {
			return &Error{Type: InternalError, Source: Internal,
				Cause: errors.New("proxy: RequestFilter returned Handled without a response")}
		}
		return nil
	}
	if done, err := c.serveCache(ctx, ex, cc); done || err != nil {
		return err
	}
	res, err = s.app.ProxyUpstreamFilter(ctx, sess, cc)
	if err != nil {
		return err
	}
	if res == Handled {
		if !sess.respStarted {
			return &Error{Type: HTTPStatus, Source: Internal, Status: 502,
				Cause: errors.New("proxy: ProxyUpstreamFilter stopped the request without a response")}
		}
		return nil
	}
	if s.opts.BufferRequestBody && sess.reqBodyKind != h1.BodyNone && !sess.bodyRead &&
		sess.upgrade == "" && !sess.h2Tunnel && !isGRPC(&sess.req) {
		// The whole body first, then the peer: a slow client holds no upstream
		// connection, and the request can be retried.
		if _, err := sess.BufferRequestBody(s.bodyBufferLimit()); err != nil {
			return err
		}
	}
	if grpcCall(sess) {
		return c.proxyGRPC(ctx, ex, cc)
	}
	return c.proxy(ctx, ex, cc)
}

// bodyBufferLimit is the limit of a body read whole by ServiceOptions.BufferRequestBody.
func (s *Service[C]) bodyBufferLimit() int64 {
	if s.opts.RequestBodyBufferLimit > 0 {
		return s.opts.RequestBodyBufferLimit
	}
	return 1 << 20
}
