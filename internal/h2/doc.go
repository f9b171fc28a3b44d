// Package h2 is Gotthard's HTTP/2 connection (RFC 9113): the server side, the downstream
// side of the proxy for clients that speak HTTP/2, over TLS (ALPN "h2") or in the clear with
// prior knowledge (h2c). It is built on golang.org/x/net/http2's Framer, which reads
// frames, and its hpack package; the connection logic, the frame writer, flow control
// and the limits are ours, so the proxy controls RST_STREAM codes, ties flow control to
// its upstream, and accepts RFC 8441 extended CONNECT.
//
// # Model
//
// [NewConn] wraps an accepted connection and [Conn.Serve] runs it. Each request stream
// gets its own goroutine running the [Handler], which reads the request from the
// [Stream] ([Stream.Request], [Stream.ReadBody], [Stream.Trailers]) and writes the
// response ([Stream.WriteHeaders], [Stream.WriteData], [Stream.WriteTrailers]); it may
// read and write on two goroutines at once. The package knows nothing of net/http: the
// proxy maps a Stream to its own request and response types.
//
// One goroutine reads frames and never waits for a handler or the socket's write side.
// One goroutine writes: every frame is appended to one of two buffers (control frames,
// which are written first, and stream frames), and the writer sends all that is queued
// in one system call. A stream's frames keep their order, RST_STREAM included.
//
// # Flow control and backpressure
//
// Request body data is copied into pooled buffers ([BufPool]) as it arrives, and
// WINDOW_UPDATE credit for the stream and the connection goes back to the client only
// as the handler reads it with ReadBody, so a handler that forwards the body to a slow
// upstream slows the client down, and a stream holds at most
// [Options.InitialWindowSize] bytes of body. WriteData waits for the client's windows
// and copies nothing beyond them; a client that keeps a window closed longer than
// [Options.WriteTimeout] has the stream reset and the handler's write fails.
//
// # Strictness and limits
//
// Requests are checked as RFC 9113 §8.2 and §8.3 ask (see [Request]); a malformed
// request resets its stream with PROTOCOL_ERROR and never reaches the handler. The
// connection passes all 145 cases of h2spec, over h2c and TLS (TestH2Spec), including
// the four the standard library's server fails: an invalid preface gets
// GOAWAY(PROTOCOL_ERROR), an oversized HEADERS frame FRAME_SIZE_ERROR, several
// SETTINGS_INITIAL_WINDOW_SIZE values in one frame are applied in order, and
// connection-specific fields are refused.
//
// Denial-of-service defences, each counted per connection (see [Options]): streams
// reset by the client or for its errors per window (rapid reset, CVE-2023-44487);
// SETTINGS, PING, PRIORITY, tiny WINDOW_UPDATE and empty DATA frames per window;
// CONTINUATION frames per header block and the header list size measured on decoded
// fields (CONTINUATION floods and HPACK bombs: nothing beyond the limit is kept);
// control frames queued for a client that does not read; concurrent streams (extra ones
// are refused with REFUSED_STREAM); and write, handshake and idle timeouts.
//
// Work in progress stays bounded under the rapid reset attack: a stream the client
// reset keeps its place among [Options.MaxConcurrentStreams] until its handler has
// returned (the handler learns of the reset through [Stream.SetOnAbort] and
// [Stream.Done], and its reads and writes fail), and while every place is taken the
// connection reads nothing more; a request head followed at once by its RST_STREAM
// starts no handler at all; [Options.Limit] bounds the handlers of all the connections
// that share it; and the read loop lets other goroutines run after every few dozen
// frames, so that a flooding connection does not hold up the others. A
// connection over a limit is closed with GOAWAY(ENHANCE_YOUR_CALM) and one Debug log
// line; other connections are not affected.
//
// # What it does not do
//
// The upgrade from HTTP/1.1 (Upgrade: h2c, RFC 7540 §3.2) is not supported: RFC 9113
// deprecates it and the h1 side refuses it. Server push is never sent (clients may
// still advertise it). Priorities (RFC 9113 §5.3, RFC 9218) are accepted and ignored.
// This is an internal package for the proxy engine; applications should use net/http.
//
// # Client
//
// [ClientConn] is the client side, for the proxy's requests to HTTP/2 peers: streams
// multiplexed up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS ([ClientConn.NewStream]
// never waits; it returns [ErrNoStream] at the limit), the same writer goroutine as the
// server side, flow control both ways with coalesced WINDOW_UPDATEs, GOAWAY and
// REFUSED_STREAM reported as [ErrUnprocessed] so that a request may be sent again, and
// buffers of the [BufPool] given back when the connection idles. [OpenTunnel] is a
// smaller client for one CONNECT stream on a connection of its own.
//
// # Example
//
// A listener shared with HTTP/1.1 sniffs the preface and hands h2c connections here,
// with the bytes it already read:
//
//	peek := make([]byte, len(h2.ClientPreface))
//	n, _ := io.ReadFull(nc, peek)
//	if string(peek[:n]) == h2.ClientPreface {
//		c := h2.NewConn(nc, peek[:n], h2.Options{Logger: logger}, func(st *h2.Stream) {
//			req := st.Request()
//			// ... forward req and the body (st.ReadBody) upstream ...
//			st.WriteHeaders(200, []h2.Field{{Name: "content-type", Value: "text/plain"}}, false)
//			st.WriteData([]byte("hello\n"), true)
//		})
//		err := c.Serve()
//		// ...
//	}
package h2
