// Package h1 is Gotthard's HTTP/1.x codec: a strict, zero-allocation parser and writer
// for HTTP/1.0 and HTTP/1.1 message heads and bodies (RFC 9112), used by the proxy on
// both sides of a connection — downstream it parses requests and writes responses,
// upstream it writes requests and parses responses.
//
// # Strictness
//
// The parser rejects what lets two HTTP implementations disagree on where a message
// ends (request smuggling, RFC 9112 §11.2): Content-Length together with
// Transfer-Encoding, differing Content-Length values, Transfer-Encoding in an HTTP/1.0
// request or with chunked not last, obs-fold (RFC 9112 §5.2), whitespace between a
// field name and its colon (§5.1), a bare CR (§2.2), control characters, invalid
// token characters, malformed chunk sizes and chunk data not followed by CRLF (§7.1),
// and heads, lines or field counts over the [Limits]. Request errors carry the status
// the proxy should answer with (400, 414, 431, 501, 505) in an [*Error]; response
// errors carry 502.
//
// Deliberate differences from net/http: the request target must have the form its
// method allows (RFC 9112 §3.2: authority-form exactly for CONNECT, "*" only for
// OPTIONS, otherwise origin-form or absolute-form); Host must be a plausible
// authority; "Content-Length: 5, 5" is one length (RFC 9110 §8.6, net/http rejects
// it); Transfer-Encoding in an HTTP/1.0 request is an error (net/http ignores it); a
// coding other than chunked is 501; chunk size lines need CRLF; [RequestHead].Host is
// the Host field even for an absolute-form target (net/http reports the target's
// authority; RFC 9112 §3.2.2 leaves that choice to the proxy).
//
// # Zero allocation and buffers
//
// [ParseRequestHead] and [ParseResponseHead] parse in one pass over a byte slice and
// return fields that alias it; with a reused head they do not allocate. [Reader] and
// [Writer] take buffers from a [BufPool] created by the user of the package (there is
// no package-level pool) and hand them back when idle, so an idle keep-alive
// connection holds no buffer.
//
// # When not to use it
//
// This is an internal codec for the proxy engine. Handlers and clients should use
// net/http; HTTP/2 lives in internal/h2.
//
// # Example
//
//	pool := h1.NewBufPool(0)
//	r := h1.NewReader(conn, pool, h1.Limits{})
//	w := h1.NewWriter(conn, pool)
//	var req h1.RequestHead
//	for {
//		if err := r.ReadRequestHead(&req); err != nil {
//			var e *h1.Error
//			if errors.As(err, &e) {
//				w.WriteStatusLine(1, e.Status, "")
//				w.WriteField("Connection", "close")
//				w.EndHead()
//				w.Flush()
//			}
//			return
//		}
//		// ... copy what is needed out of req, then drain the body:
//		for {
//			_, err := r.ReadBody()
//			if err == io.EOF {
//				break
//			} else if err != nil {
//				return
//			}
//		}
//		w.WriteStatusLine(1, 204, "")
//		w.EndHead()
//		if w.Flush() != nil || !req.KeepAlive {
//			return
//		}
//		r.Release()
//		w.Release()
//	}
package h1
