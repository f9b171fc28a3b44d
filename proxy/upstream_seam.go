package proxy

import (
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/message"
)

// upstream is the source of one response, the peer side's counterpart of downstream:
// an HTTP/1.x peer's connection (h1Body) or an HTTP/2 peer's stream (h2Attempt on the
// service's own connections, h2Body through net/http's Transport). Its head is in the
// exchange's resp when respond takes it; respond runs the response phases on
// it and writes it to the downstream, the one place that does so for every source.
// The framing of the body the client gets follows from the head as the phases leave
// it: none for a HEAD request or a 1xx/204/304, the Content-Length if there is one,
// otherwise a body of unknown length.
type upstream interface {
	// known returns, one entry per line of the head, the lines valid as they came
	// (see validateChanged); nil to check every line after the phases.
	known() []message.Field
	// readBody returns the next piece of the body, aliasing a buffer valid until the
	// next call; io.EOF (possibly with data) at the end.
	readBody() ([]byte, error)
	// buffered reports how many body bytes are at hand without waiting.
	buffered() int
	// readTimeout bounds the next wait on the peer.
	readTimeout(now time.Time)
	// trailers appends the response trailers, after io.EOF.
	trailers(h *message.Header, a *arena.Arena)
	// skip drops a body that the response cannot have (HEAD, 204, 304).
	skip()
	// finish is called once, last: sent reports whether the response went to the
	// client through the body phases (false when a phase failed, or answered the client
	// itself, before), e how that ended. It releases what the source holds and returns
	// the peer's connection to the pool when it is fit for another request (an
	// HTTP/1.x connection left out is closed by its exchange).
	finish(sess *Session, sent bool, e *Error)
}

// respond runs the response phases on the response of src (its head in ex.resp) and
// writes it to the client: UpstreamResponseFilter and ResponseFilter on the head, the
// head to the downstream, UpstreamResponseBodyFilter and ResponseBodyFilter on each
// piece of the body, ResponseTrailerFilter on the trailers, then the end of the
// response. A filter that answered the client itself ends it after the head phases.
//
// A response from the cache (a stored one, or another request's fill) skips the
// upstream phases. A peer's response to a request that fills the cache goes to
// ResponseCacheFilter after UpstreamResponseFilter, and its body to the fill after
// UpstreamResponseBodyFilter; a 304 that validates a stored response becomes that
// response, refreshed.
func (c *conn[C]) respond(ctx contextT, ex *exchange[C], cc C, src upstream) *Error {
	cached := fromCache(src)
	if !cached {
		if err := c.svc.app.UpstreamResponseFilter(ctx, &ex.sess, cc, &ex.resp); err != nil {
			e := asError(err, InternalError, Internal)
			src.finish(&ex.sess, false, e)
			return e
		}
		if ex.cache.c != nil {
			revalidated, e := c.cacheResponse(ctx, ex, cc)
			if e != nil {
				src.finish(&ex.sess, false, e)
				return e
			}
			if revalidated { // (or a stale response answers for the peer's 5xx)
				src.skip()
				src.finish(&ex.sess, true, nil)
				ex.sess.timing.End = time.Time{}
				if ex.cache.refreshed() {
					return nil
				}
				if err := c.serveStored(ctx, ex, cc, ex.sess.clock()); err != nil {
					return asError(err, InternalError, Internal)
				}
				return nil
			}
		}
	}
	if ch := ex.cache.c; ch != nil {
		if ch.Policy().Surrogate != "" {
			// (Kept in the stored head, for the freshness it gives; not for clients.)
			ex.resp.Header.Del("Surrogate-Control")
		}
		if ch.CacheStatus() {
			c.addCacheStatus(ex)
		}
	}
	done, e := c.responseHead(ctx, ex, cc, src.known())
	if done || e != nil {
		src.finish(&ex.sess, false, e)
		return e
	}
	e = c.sendResponse(ctx, ex, cc, src, cached)
	src.finish(&ex.sess, true, e)
	return e
}

// responseHead runs ResponseFilter on a response's head (ex.resp; known as for
// validateChanged) and checks what the phases changed. done reports that a filter answered
// the client itself: the response is dropped. A protocol switch's answer (see
// answerSwitch) goes through here too.
func (c *conn[C]) responseHead(ctx contextT, ex *exchange[C], cc C, known []message.Field) (done bool, _ *Error) {
	s, sess, resp := c.svc, &ex.sess, &ex.resp
	if err := s.app.ResponseFilter(ctx, sess, cc, resp); err != nil {
		return false, asError(err, InternalError, Internal)
	}
	if sess.respStarted {
		return true, nil
	}
	for _, m := range ex.mods {
		if err := m.r.ResponseFilter(ctx, sess, resp); err != nil {
			return false, asError(err, InternalError, Internal)
		}
		if sess.respStarted {
			return true, nil
		}
	}
	if err := validateChanged(&resp.Header, known); err != nil {
		return false, asError(err, InternalError, Internal)
	}
	return false, nil
}
