package proxy

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// fail handles a request that ended with err: it runs FailToProxy and answers the
// client if nothing was sent yet.
func (c *conn[C]) fail(ctx contextT, ex *exchange[C], cc C, err error) {
	s, sess := c.svc, &ex.sess
	e := asError(err, InternalError, Internal)
	if !s.app.SuppressErrorLog(sess, cc, e) {
		lvl := levelFor(e)
		s.log.Log(ctx, lvl, "request failed", "err", e, "method", sess.req.Method,
			"target", sess.req.Target, "client", c.clientS)
	}
	if e.Source == Downstream && e.Type != HTTPStatus {
		sess.closeAfter = true
	}
	if ex.drained.Load() && errors.Is(e, ErrShutdown) {
		c.endDrainedGRPC(ex) // a gRPC call ended by CloseStreams
		return
	}
	if sess.respStarted || errors.Is(e, ErrShutdown) {
		// Part of the response is out: the only way to tell the client is to close.
		// Or the service is closing the client's connection: nothing can be said.
		sess.closeAfter = true
		return
	}
	if ex.cache.obj != nil && c.serveStaleOnError(ctx, ex, cc, e) {
		return
	}
	status := s.app.FailToProxy(ctx, sess, cc, e)
	if sess.respStarted {
		return
	}
	if status == 0 {
		status = ErrorStatus(e)
	}
	if status == StatusClientClosedRequest && sess.transport() == &c.h1 {
		// The HTTP/1.x client closed its connection (or its sending half): nobody
		// waits for an answer. The status is for Logging, as nginx logs 499.
		sess.status = status
		sess.closeAfter = true
		return
	}
	if !sess.ds.bodyDone() && !sess.bodyBuffered && sess.reqBodyKind != h1.BodyNone && sess.bodyRead {
		sess.closeAfter = true
	}
	c.writeErrorPage(sess, status)
	if sess.status == 0 && status == StatusClientClosedRequest {
		sess.status = status // nginx's convention for the log: the client left, nothing was sent
	}
}

// writeErrorPage answers with a plain page that says only the status.
func (c *conn[C]) writeErrorPage(sess *Session, status int) {
	text := h1.StatusText(status)
	if text == "" {
		text = "Error"
	}
	h := &sess.scratchHeader
	h.Reset()
	sess.ds.writeTimeout(time.Now(), durOr(c.svc.opts.SendTimeout, 60*time.Second))
	if isGRPC(&sess.req) {
		// A gRPC client understands a status, not an error page: answer "trailers-only"
		// (HTTP 200, grpc-status in the head, no body).
		h.Status = 200
		h.Header.Set("Content-Type", "application/grpc")
		h.Header.Set("Grpc-Status", strconv.Itoa(grpcCode(status)))
		h.Header.Set("Grpc-Message", text)
		if err := sess.writeWhole(h, nil, ""); err != nil {
			sess.closeAfter = true
		}
		return
	}
	h.Status = status
	h.Header.Set("Content-Type", "text/plain; charset=utf-8")
	h.Header.Set("Cache-Control", "no-store")
	if err := sess.writeWhole(h, nil, statusLine(status, text)); err != nil {
		sess.closeAfter = true
	}
}

// isGRPC reports whether a request is a gRPC call (not gRPC-web).
func isGRPC(r *message.RequestHeader) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web")
}

// grpcCode maps the status of a failed request to a gRPC status code, as gRPC's own
// "HTTP to gRPC status code mapping" does, except that a gateway timeout is
// DEADLINE_EXCEEDED.
func grpcCode(status int) int {
	switch status {
	case 400:
		return 13 // INTERNAL
	case 401:
		return 16 // UNAUTHENTICATED
	case 403:
		return 7 // PERMISSION_DENIED
	case 404, 501:
		return 12 // UNIMPLEMENTED
	case 429, 502, 503:
		return 14 // UNAVAILABLE
	case 504:
		return 4 // DEADLINE_EXCEEDED
	case 500:
		return 13 // INTERNAL
	}
	return 2 // UNKNOWN
}
