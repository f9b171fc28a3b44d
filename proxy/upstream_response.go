package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/message"
)

// twoPieceMin is the size from which the last piece of a response body is written
// together with the buffered head rather than copied behind it. netio's
// BenchmarkWriteTwo puts the break-even near 768 bytes: the two-piece write costs about
// 2.5% more at 512 and 1.5% less at 1024.
const twoPieceMin = 1024

// sendResponse writes the response head and streams the body to the client: respond's
// part after the head phases.
// cached tells that src is the cache's: UpstreamResponseBodyFilter does not run.
func (c *conn[C]) sendResponse(ctx contextT, ex *exchange[C], cc C, src upstream, cached bool) *Error {
	s, sess, resp := c.svc, &ex.sess, &ex.resp
	d := sess.ds
	noBody := sess.req.Method == "HEAD" || bodyless(resp.Status)
	kind := h1.BodyNone
	var n int64
	if !noBody {
		kind = h1.BodyChunked // a body of unknown length
		if v, ok := resp.Header.Lookup("Content-Length"); ok {
			if parsed, ok := h2.ParseContentLength(v); ok {
				kind, n = h1.BodyLength, parsed
			}
		}
	}
	sendTimeout := durOr(s.opts.SendTimeout, 60*time.Second)
	d.writeTimeout(sess.timing.UpstreamResponse, sendTimeout)
	sess.respStarted = true
	sess.status = resp.Status
	if err := d.writeHead(sess, resp, kind, n); err != nil {
		sess.closeAfter = true
		return asError(err, WriteError, Downstream)
	}
	if noBody {
		src.skip()
		if !cached && ex.cache.fill != nil {
			c.teeFill(ex, nil, true) // (a stored 204 has no body)
		}
		c.releaseUpstream(ex, src)
		if err := d.flush(); err != nil {
			sess.closeAfter = true
			return asError(err, WriteError, Downstream)
		}
		return nil
	}
	for {
		// Pass on what was received before waiting for more, so that a streamed
		// response (server-sent events, long polls) is not held back in the buffer.
		// At most the CRLF that ends a chunk can be left once its data was read.
		if src.buffered() <= 2 && d.buffered() > 0 {
			if err := d.flush(); err != nil {
				sess.closeAfter = true
				return asError(err, WriteError, Downstream)
			}
		}
		if src.buffered() == 0 { // the read waits on the peer
			t := time.Now()
			src.readTimeout(t)
			d.writeTimeout(t, sendTimeout)
		}
		chunk, rerr := src.readBody()
		if rerr != nil && rerr != io.EOF && ex.drained.Load() {
			// A gRPC call that CloseStreams cut: what arrived may end inside a
			// message, and the call ends with a status instead (see endDrainedGRPC).
			d.flush()
			return shutdownError(upstreamReadError(rerr))
		}
		if rerr != nil && rerr != io.EOF {
			// Pass on what arrived; the close tells the client the body is cut short.
			sess.closeAfter = true
			if len(chunk) > 0 && d.writeBody(chunk) == nil {
				sess.bytesSent += int64(len(chunk))
			}
			d.flush()
			return upstreamReadError(rerr)
		}
		end := rerr == io.EOF
		if len(chunk) > 0 || end {
			out, err := chunk, error(nil)
			if !cached {
				out, err = s.app.UpstreamResponseBodyFilter(ctx, sess, cc, chunk, end)
				if err == nil && ex.cache.fill != nil {
					c.teeFill(ex, out, end)
				}
			}
			if err == nil {
				out, err = s.app.ResponseBodyFilter(ctx, sess, cc, out, end)
			}
			if err == nil && len(ex.mods) > 0 {
				out, err = throughModules(ctx, ex, ModuleRequest.ResponseBodyFilter, out, end)
			}
			if err != nil {
				sess.closeAfter = true
				return asError(err, InternalError, Internal)
			}
			stop := false // a gRPC call that CloseStreams ends: at the next message boundary
			if ex.grpcDrains != nil {
				drained := ex.drained.Load() && !end // (at its end, the peer's own status goes)
				k := ex.grpcMsgs.feed(out, drained)
				if stop = drained && ex.grpcMsgs.boundary(); stop {
					out = out[:k] // (the rest is dropped: the call ends with a status)
				}
			}
			if len(out) > 0 {
				var err error
				if hd, ok := d.(*h1down); ok && end && len(out) >= twoPieceMin && hd.kind == h1.BodyLength {
					// The last piece of the body goes out with the head (or what else
					// is buffered) in one write, without being copied behind it.
					err = hd.w.WriteBodyFlush(out)
				} else {
					err = d.writeBody(out)
				}
				if err != nil {
					sess.closeAfter = true
					if errors.Is(err, h1.ErrBodyTooLong) {
						return &Error{Type: InternalError, Source: Internal, Cause: err}
					}
					return asError(err, WriteError, Downstream)
				}
				sess.bytesSent += int64(len(out))
			}
			if stop {
				// Between two messages: the call ends here, with a status (see
				// endDrainedGRPC).
				if err := d.flush(); err != nil {
					sess.closeAfter = true
					return asError(err, WriteError, Downstream)
				}
				return shutdownError(nil)
			}
		}
		if end {
			break
		}
	}
	var trailers *message.Header
	ex.trl.Reset()
	if src.trailers(&ex.trl, ex.arena); ex.trl.Len() > 0 {
		if err := s.app.ResponseTrailerFilter(ctx, sess, cc, &ex.trl); err != nil {
			sess.closeAfter = true
			return asError(err, InternalError, Internal)
		}
		for _, m := range ex.mods {
			if err := m.r.ResponseTrailerFilter(ctx, sess, &ex.trl); err != nil {
				sess.closeAfter = true
				return asError(err, InternalError, Internal)
			}
		}
		if err := validateHeader(&ex.trl); err != nil {
			sess.closeAfter = true
			return asError(err, InternalError, Internal)
		}
		trailers = &ex.trl
	}
	c.releaseUpstream(ex, src)
	if err := d.finish(trailers); err != nil {
		sess.closeAfter = true
		if errors.Is(err, h1.ErrBodyTooShort) {
			return &Error{Type: InternalError, Source: Internal, Cause: err}
		}
		return asError(err, WriteError, Downstream)
	}
	if err := d.flush(); err != nil {
		sess.closeAfter = true
		return asError(err, WriteError, Downstream)
	}
	if trailers != nil {
		sess.noteGRPCStatus(trailers)
	} else if sess.teTrailers || sess.gw.on { // (a trailers-only gRPC response)
		sess.noteGRPCStatus(&resp.Header)
	}
	return nil
}
