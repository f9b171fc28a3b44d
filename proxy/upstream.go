package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/message"
)

var (
	errNoPeer     = errors.New("proxy: UpstreamPeer returned no peer")
	errPeerClosed = errors.New("proxy: peer closed the connection")
	errClientGone = errors.New("proxy: the client reset the request or closed its connection")
)

// proxy sends the request to peers chosen by UpstreamPeer, retrying as the failure phases
// and safety allow, and streams the response to the client.
func (c *conn[C]) proxy(ctx contextT, ex *exchange[C], cc C) error {
	s, sess := c.svc, &ex.sess
	maxRetries := s.maxRetries()
	var refused *Peer // the peer the last attempt failed to connect to, if it did
	var backoff time.Duration
	for attempt := 0; ; attempt++ {
		if attempt > 0 && ctx.Err() != nil {
			return shutdownError(nil) // (closed while the failure phases ran)
		}
		sess.retries = attempt
		peer, err := s.app.UpstreamPeer(ctx, sess, cc)
		if err != nil || peer == nil {
			var e *Error
			if errors.As(err, &e) {
				return e
			}
			if err == nil {
				err = errNoPeer
			}
			return &Error{Type: PeerSelectionError, Source: Internal, Cause: err}
		}
		if err := peer.Validate(); err != nil {
			// A mistake in the peer, the same on every attempt: say so, once.
			return &Error{Type: InternalError, Source: Internal, Cause: err}
		}
		sess.peer = peer
		if refused != nil && (refused == peer || refused.key() == peer.key()) {
			backoff = connectBackoff(backoff)
			if !ex.waitBackoff(ctx, backoff) {
				if ctx.Err() != nil {
					return shutdownError(nil)
				}
				return clientGoneError(errClientGone)
			}
		}
		refused = nil
		e := c.attempt(ctx, ex, cc, peer)
		if e == nil {
			return nil
		}
		if ctx.Err() != nil {
			// The service closed and cut the attempt (see Service.Close): neither the
			// peer's failure nor one to retry.
			return shutdownError(e)
		}
		ex.markTotalTimeout(e, peer)
		if e.Source == Upstream && ex.clientGone() {
			// The client reset the stream or its connection ended, and cutting the
			// peer's side is what failed the attempt: the client's doing, not the
			// peer's, and nobody is left to retry for.
			return clientGoneError(fmt.Errorf("%w; the peer's side was cut: %w", errClientGone, e))
		}
		if e.connectFailure {
			e.connectFailure = false
			if e2 := s.app.FailToConnect(ctx, sess, cc, peer, e); e2 != nil {
				e = e2
			}
			if e.Retry && attempt < maxRetries && c.canRetry(sess, false) {
				refused = peer
				continue
			}
			return e
		}
		if sess.respStarted {
			return e
		}
		if sess.reused && e.Source == Upstream && e.Type == ConnectionClosed && !ex.gotResponseByte {
			// A pooled connection that the peer closed as we took it: try again, if
			// resending is safe.
			e.Retry = true
		}
		if e2 := s.app.ErrorWhileProxy(ctx, sess, cc, peer, e, sess.requestIndex > 0); e2 != nil {
			e = e2
		}
		if e.Retry && attempt < maxRetries && c.canRetry(sess, ex.requestSent) {
			continue
		}
		return e
	}
}

// Retrying a peer that could not be connected to waits first: firstBackoff, doubling
// for each further retry to the same peer, at most maxBackoff, and no longer than the
// request lasts: the service's closing, or an HTTP/2 client's leaving, ends the wait (and
// the request). A peer that refuses connections (restarting, or overloaded) gets a
// moment to come back instead of three attempts within a few milliseconds. No wait comes
// before an attempt on another peer.
const (
	firstBackoff = 10 * time.Millisecond
	maxBackoff   = time.Second
)

// connectBackoff returns the wait before the next retry to a peer that could not be
// connected to, after a wait of last (0 for none).
func connectBackoff(last time.Duration) time.Duration {
	return min(max(2*last, firstBackoff), maxBackoff)
}

// waitBackoff waits d, or until ctx (the service's) ends or the client leaves (see
// abortUpstream), and reports whether the whole wait passed.
func (ex *exchange[C]) waitBackoff(ctx contextT, d time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if !ex.setUpstream(nil, cancel) {
		return false // the client left already
	}
	defer ex.setUpstream(nil, nil)
	<-wctx.Done()
	return wctx.Err() == context.DeadlineExceeded && ctx.Err() == nil && !ex.clientGone()
}

// clientGoneError is the error of a request whose client reset its stream, or closed
// its connection, before the response started (see abortUpstream).
func clientGoneError(cause error) *Error {
	return &Error{Type: ConnectionClosed, Source: Downstream, Status: StatusClientClosedRequest, Cause: cause}
}

// attempt connects to peer (or takes a pooled connection) and runs one exchange. A
// failure to connect comes back marked connectFailure, for FailToConnect.
func (c *conn[C]) attempt(ctx contextT, ex *exchange[C], cc C, peer *Peer) *Error {
	s, sess := c.svc, &ex.sess
	ex.total = time.Time{}
	switch {
	case wsOverH2(sess, peer):
		if e := c.exchangeWSH2(ctx, ex, cc, peer); e != errNoExtendedConnect {
			return e
		}
		// The peer does not offer WebSockets over HTTP/2: HTTP/1.1 it is.
	case peer.Protocol != ProtoHTTP1 && sess.req.Method != "CONNECT" && sess.upgrade == "":
		// (A CONNECT tunnels over TCP; a WebSocket to a ProtoHTTP2IfOffered peer goes
		// as an HTTP/1.1 Upgrade.)
		return c.exchangeH2(ctx, ex, cc, peer)
	}
	if ex.clientGone() { // reset before its upstream side began: nothing to start
		return clientGoneError(errClientGone)
	}
	now := sess.clock()
	uc, reused, cerr := c.connect(ctx, ex, peer, now)
	if cerr != nil {
		cerr.connectFailure = true
		return cerr
	}
	if !reused {
		now = sess.clock() // the dial took its time
	}
	sess.reused = reused
	sess.timing.UpstreamConnected = now // also the start of the attempt
	if err := s.app.ConnectedToUpstream(ctx, sess, cc, peer, reused); err != nil {
		uc.close()
		return asError(err, InternalError, Internal)
	}
	return c.exchangeWith(ctx, ex, cc, uc, peer)
}

// canRetry reports whether the request may be sent again; sent tells whether any of it
// was written to the last peer. Nothing may be resent once the client has part of a
// response, or once body bytes were streamed from the client without being kept. A
// request that reached a peer is resent only if its method is idempotent (RFC 9110
// §9.2.2) or it carries an Idempotency-Key: the peer may have acted on it.
func (c *conn[C]) canRetry(sess *Session, sent bool) bool {
	if sess.respStarted {
		return false
	}
	if sess.reqBodyKind != h1.BodyNone && !sess.bodyBuffered && sess.bodyRead {
		return false
	}
	if !sent {
		return true
	}
	return idempotent(sess.req.Method) || sess.req.Header.Has("Idempotency-Key")
}

func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// hostPool returns the pool of idle connections to peer, or nil if there is none yet.
// An HTTP/1.x client connection, whose requests run one at a time, remembers the last
// one it used: its requests usually go to the same peer, and comparing keys is cheaper
// than hashing one.
func (c *conn[C]) hostPool(peer *Peer) *hostPool {
	k := peer.key()
	if c.lastHost != nil && c.lastPeer == peer && c.lastKey == k && !c.lastHost.removed.Load() {
		return c.lastHost
	}
	h := c.svc.pool.lookup(k)
	if h != nil {
		c.lastPeer, c.lastKey, c.lastHost = peer, k, h
	}
	return h
}

// connect takes a pooled connection to peer or opens one; now is the time.
func (c *conn[C]) connect(ctx contextT, ex *exchange[C], peer *Peer, now time.Time) (*upConn, bool, *Error) {
	sess := &ex.sess
	strict := !idempotent(sess.req.Method) || sess.reqBodyKind != h1.BodyNone && !sess.bodyBuffered
	var h *hostPool
	if d, ok := sess.transport().(*h1down); ok && d == &c.h1 {
		h = c.hostPool(peer)
	} else {
		h = c.svc.pool.lookup(peer.key()) // the streams of an HTTP/2 connection run at once
	}
	if uc := c.svc.pool.get(h, strict, now); uc != nil {
		return uc, true, nil
	}
	if d, ok := sess.transport().(*h2down); ok && d == &ex.h2d {
		// A client that resets its stream ends the dial too (see abortUpstream).
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if ex.setUpstream(nil, cancel) {
			defer ex.setUpstream(nil, nil)
		} else {
			cancel() // already reset: the dial fails at once
		}
		ctx = dctx
	}
	uc, err := c.svc.pool.dial(ctx, peer)
	if err != nil {
		return nil, false, asError(err, ConnectError, Upstream)
	}
	return uc, false, nil
}

// exchangeWith runs one attempt on uc: request out, response back to the client. It
// closes uc or returns it to the pool.
func (c *conn[C]) exchangeWith(ctx contextT, ex *exchange[C], cc C, uc *upConn, peer *Peer) *Error {
	c.up.Store(uc)
	// An HTTP/2 client can reset its stream while this runs (see abortUpstream); an
	// HTTP/1.x client's going away shows in the I/O.
	d, ok := ex.sess.transport().(*h2down)
	abortable := ok && d == &ex.h2d
	if abortable && !ex.setUpstream(uc.nc, nil) {
		c.up.Store(nil)
		uc.close()
		return clientGoneError(errClientGone)
	}
	pooled := false
	// (The work is in exchangeOn, so that this function has few returns and its defer
	// costs no more than a call: the compiler inlines the deferred call only then.)
	defer func() {
		if abortable {
			ex.setUpstream(nil, nil)
		}
		c.up.Store(nil)
		if !pooled {
			uc.close()
		}
	}()
	return c.exchangeOn(ctx, ex, cc, uc, peer, &pooled)
}

// exchangeOn does exchangeWith's work; it sets *pooled when uc went back to the pool.
func (c *conn[C]) exchangeOn(ctx contextT, ex *exchange[C], cc C, uc *upConn, peer *Peer, pooled *bool) *Error {
	s, sess := c.svc, &ex.sess
	ex.gotResponseByte, ex.requestSent = false, false
	ex.method = append(ex.method[:0], sess.req.Method...)
	if ctx.Err() != nil { // Close ran before uc was visible to it
		return &Error{Type: ConnectionClosed, Source: Internal, Cause: ctx.Err()}
	}
	o := &peer.Options
	now := sess.timing.UpstreamConnected
	var total time.Time
	if o.TotalTimeout > 0 {
		total = now.Add(o.TotalTimeout)
	}
	ex.peerOpts, ex.total = o, total
	uc.dl.write(now, o.writeTimeout(), total)
	if sess.req.Method == "CONNECT" { // allowed, or run would not have let it by
		return c.connectTunnel(sess, uc)
	}

	up, e := c.upstreamRequest(ctx, ex, cc, peer)
	if e != nil {
		return e
	}
	if !h1.ValidMethod(up.Method) || !h1.ValidTarget(up.Target) {
		return &Error{Type: InternalError, Source: Internal, Cause: errors.New("proxy: invalid method or target in upstream request")}
	}
	kind, n, err := requestFraming(sess, up)
	if err != nil {
		return err
	}
	w := uc.w
	ex.requestSent = true
	w.WriteRequestLine(up.Method, up.Target, 1)
	for _, f := range up.Header.Fields() {
		if message.EqualFold(f.Name, "Content-Length") || message.EqualFold(f.Name, "Transfer-Encoding") {
			continue
		}
		w.WriteField(f.Name, f.Value)
	}
	switch kind {
	case h1.BodyLength:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(ex.num[:0], n, 10))
		w.WriteString("\r\n")
	case h1.BodyChunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if sess.upgrade != "" {
		writeUpgradeFields(w, sess.upgrade)
		if sess.h2Tunnel {
			// A WebSocket over HTTP/2 has no key (RFC 8441 §5): make one up, as the
			// HTTP/1.1 handshake needs it.
			sess.wsKey = newWebSocketKey()
			w.WriteString("Sec-WebSocket-Key: ")
			w.WriteString(sess.wsKey)
			w.WriteString("\r\n")
			if !up.Header.Has("Sec-WebSocket-Version") {
				w.WriteString("Sec-WebSocket-Version: 13\r\n")
			}
		}
	}
	w.EndHead()
	// early is set when sending the body failed on the peer's side: the peer may have
	// answered before reading it all (a 413, a 401) and closed, as RFC 9112 §9.5 lets a
	// server do. That answer is relayed, as nginx does, not turned into a 502.
	var early *Error
	if kind != h1.BodyNone {
		w.StartBody(kind, n)
		if e := c.sendBody(ctx, ex, cc, uc); e != nil {
			if e.Source != Upstream {
				return e
			}
			early = e
		}
	}
	// The rest of the request goes out as the read of the answer starts waiting (see
	// netio.Conn.WriteBeforeRead), which spares a read that would find nothing.
	deferred := early == nil && uc.rio != nil && uc.watched && w.Buffered() > 0
	if early != nil {
		// An answer sent before the peer gave up on the body is at hand already.
		uc.dl.read(sess.clock(), min(o.readTimeout(), earlyAnswerWait), total)
	} else if deferred {
		uc.rio.WriteBeforeRead(w.Pending())
		// The close watcher checks AwaitingAnswer after it marks a connection dead; a
		// connection marked dead before is caught here.
		if uc.dead.Load() {
			uc.rio.WriteBeforeRead(nil)
			w.Sent()
			ex.requestSent = kind != h1.BodyNone
			return &Error{Type: ConnectionClosed, Source: Upstream, Cause: errPeerClosed}
		}
	} else if err := w.Flush(); err != nil {
		return upstreamWriteError(err)
	}

	// The response head, skipping or forwarding interim responses.
	if early == nil {
		if kind != h1.BodyNone {
			now = sess.clock() // the body took its time: the wait for the answer starts now
		}
		uc.dl.read(now, o.readTimeout(), total)
	}
	// An HTTP/1.x client that goes away while the peer is asked is noticed by the
	// service's client watch, which cuts this wait (an HTTP/2 client's reset does it
	// through abortUpstream).
	watch := !s.opts.IgnoreClientAbort && sess.transport() == &c.h1
	if watch {
		c.watchClient(ex, uc.nc)
	}
	uh := &ex.upHead
	for {
		err := uc.r.ReadResponseHead(ex.method, uh)
		if deferred {
			w.Sent()
			deferred = false
		}
		if err != nil {
			if watch && c.unwatchClient(ex) {
				return &Error{Type: ConnectionClosed, Source: Upstream, Cause: fmt.Errorf("%w: %w", errClientGone, err)}
			}
			if early != nil {
				return early // no answer: sending the body failed
			}
			if uc.dead.Load() && !ex.gotResponseByte && uc.r.Buffered() == 0 {
				// The peer closed the connection; the close watcher cut the wait.
				return &Error{Type: ConnectionClosed, Source: Upstream, Cause: errPeerClosed}
			}
			return upstreamReadError(err)
		}
		ex.gotResponseByte = true
		if uh.Status >= 200 || uh.Status == 101 && sess.upgrade != "" {
			break
		}
		if uh.Status == 101 {
			if watch {
				c.unwatchClient(ex)
			}
			return &Error{Type: InvalidHTTP, Source: Upstream, Cause: errors.New("proxy: unrequested protocol switch")}
		}
		if uh.Status != 100 && sess.req.Version != message.HTTP10 {
			c.forwardInterim(ex, uh)
		}
	}
	if watch && c.unwatchClient(ex) {
		return &Error{Type: ConnectionClosed, Source: Upstream, Cause: errClientGone}
	}
	if early != nil {
		// The client's body was not all read, nor the peer's connection left in a known
		// state: neither connection serves another request.
		uh.KeepAlive = false
		if !sess.ds.bodyDone() {
			sess.closeAfter = true
		}
	}
	sess.timing.UpstreamResponse = sess.clock()
	sess.upstreamStatus = uh.Status
	resp := &ex.resp
	resp.Reset()
	resp.Status = uh.Status
	resp.Reason = ex.arena.String(uh.Reason)
	resp.Version = message.HTTP11
	if uh.Minor == 0 {
		resp.Version = message.HTTP10
	}
	copyFields(&resp.Header, uh.Fields, ex.arena, false, false)
	if uh.ContentLength > 0 && !uh.ContentLengthPlain {
		normalizeContentLength(&resp.Header, uh.ContentLength, ex.arena)
	}
	if s.via != "" {
		appendVia(&resp.Header, s.via)
	}
	ex.known = knownFields(ex.known, &resp.Header) // all from the codec or the framework
	if uh.Status == 101 {
		if !switchedTo(uh.Fields, sess.upgrade) {
			return &Error{Type: InvalidHTTP, Source: Upstream, Cause: errors.New("proxy: the peer switched to a protocol other than the one asked for")}
		}
		return c.switchProtocols(ctx, ex, cc, uc)
	}
	ex.h1b = h1Body{uc: uc, timeout: o.readTimeout(), total: total, head: ex.known, keepAlive: uh.KeepAlive, pool: s.pool}
	e = c.respond(ctx, ex, cc, &ex.h1b)
	*pooled = ex.h1b.pooled
	return e
}

// earlyAnswerWait bounds the wait for the answer of a peer that stopped taking the
// request body: an answer sent before that is already at hand.
const earlyAnswerWait = time.Second

// drainLimit bounds the rest of a response body read and dropped after its client went
// away (drainResponse): up to this much, reading it costs less than opening a new
// connection to the peer in its place.
const drainLimit = 256 << 10

// drainResponse reads and drops the rest of the response body on uc, whose client went
// away while it was being sent, so that uc can go back to the pool: the client's going
// away says nothing about the peer. It gives up, reporting false, after drainLimit
// bytes, a read error, or timeout (the peer's read timeout, at most a second).
func drainResponse(uc *upConn, timeout time.Duration) bool {
	uc.dl.read(time.Now(), min(timeout, time.Second), time.Time{})
	for n := 0; n <= drainLimit; {
		b, err := uc.r.ReadBody()
		n += len(b)
		if err == io.EOF {
			return uc.r.Buffered() == 0
		}
		if err != nil {
			return false
		}
	}
	return false
}

// upstreamRequest builds the request head for a peer: a fresh copy of the client's
// request, the framework's fields, then the user's UpstreamRequestFilter, checked.
func (c *conn[C]) upstreamRequest(ctx contextT, ex *exchange[C], cc C, peer *Peer) (*message.RequestHeader, *Error) {
	sess := &ex.sess
	up := &ex.upReq
	up.CopyFrom(&sess.req)
	if !up.Header.Has("Host") {
		// HTTP/1.0 clients may leave Host out; HTTP/1.1 and HTTP/2 need it upstream.
		up.Header.Add("Host", peerHost(peer))
	}
	// The client's lines as the codec parsed them need no second check, nor do the
	// forwarding fields valid as made (see addForwarded); the lines the phases add or
	// change do.
	ex.known = unchangedFields(ex.known, &up.Header, ex.reqKnown)
	ex.known = c.forwardedFields(up, ex.known)
	if err := c.svc.app.UpstreamRequestFilter(ctx, sess, cc, up); err != nil {
		return nil, asError(err, InternalError, Internal)
	}
	if err := validateChanged(&up.Header, ex.known); err != nil {
		return nil, asError(err, InternalError, Internal)
	}
	return up, nil
}

// requestFraming decides how the request body goes upstream: the Content-Length the
// request head keeps, or chunked.
func requestFraming(sess *Session, up *message.RequestHeader) (h1.BodyKind, int64, *Error) {
	if sess.reqBodyKind == h1.BodyNone && !(sess.bodyBuffered && len(sess.body) > 0) {
		if sess.req.Method != "GET" && sess.req.Method != "HEAD" && up.Header.Has("Content-Length") {
			return h1.BodyLength, 0, nil
		}
		return h1.BodyNone, 0, nil
	}
	if sess.bodyBuffered {
		return h1.BodyLength, int64(len(sess.body)), nil
	}
	if v, ok := up.Header.Lookup("Content-Length"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, &Error{Type: InternalError, Source: Internal, Cause: errors.New("proxy: invalid Content-Length in upstream request")}
		}
		return h1.BodyLength, n, nil
	}
	return h1.BodyChunked, 0, nil
}

// sendBody streams (or replays) the request body upstream.
func (c *conn[C]) sendBody(ctx contextT, ex *exchange[C], cc C, uc *upConn) *Error {
	s, sess := c.svc, &ex.sess
	d := sess.ds
	w := uc.w
	if sess.bodyBuffered {
		if err := w.WriteBody(sess.body); err != nil {
			return upstreamWriteError(err)
		}
		if err := w.FinishBody(nil); err != nil {
			return upstreamWriteError(err)
		}
		return nil
	}
	if err := sess.send100(); err != nil {
		return err.(*Error)
	}
	sess.bodyRead = true
	// Each wait for the client and for the peer is bounded, not the whole body: the
	// deadlines move forward as data flows (checked on the clock, not reset per read).
	bodyTimeout := durOr(s.opts.ClientBodyTimeout, 60*time.Second)
	writeTimeout := ex.peerOpts.writeTimeout()
	for {
		if d.willWait() { // the read waits on the client
			t := time.Now()
			d.readTimeout(t, sess.rate.wait(t, bodyTimeout, sess.bytesReceived))
			uc.dl.write(t, writeTimeout, ex.total)
		}
		chunk, rerr := sess.readBody()
		rerr = sess.rate.end(rerr)
		if rerr != nil && rerr != io.EOF {
			sess.closeAfter = true
			return clientReadError(rerr)
		}
		end := rerr == io.EOF
		if len(chunk) > 0 || end {
			out, err := s.app.RequestBodyFilter(ctx, sess, cc, chunk, end)
			if err != nil {
				sess.closeAfter = true
				return asError(err, InternalError, Internal)
			}
			if len(out) > 0 {
				if err := w.WriteBody(out); err != nil {
					if errors.Is(err, h1.ErrBodyTooLong) {
						sess.closeAfter = true
						return &Error{Type: InternalError, Source: Internal, Cause: err}
					}
					return upstreamWriteError(err)
				}
			}
		}
		if end {
			break
		}
	}
	var trailers []h1.Field
	ex.trl.Reset()
	if d.trailers(&ex.trl, ex.arena); ex.trl.Len() > 0 {
		trailers = make([]h1.Field, 0, ex.trl.Len())
		for _, f := range ex.trl.Fields() {
			trailers = append(trailers, h1.Field{Name: []byte(f.Name), Value: []byte(f.Value)})
		}
	}
	if err := w.FinishBody(trailers); err != nil {
		if errors.Is(err, h1.ErrBodyTooShort) {
			return &Error{Type: InternalError, Source: Internal, Cause: err}
		}
		return upstreamWriteError(err)
	}
	return nil
}

// twoPieceMin is the size from which the last piece of a response body is written
// together with the buffered head rather than copied behind it. netio's
// BenchmarkWriteTwo puts the break-even near 768 bytes: the two-piece write costs about
// 2.5% more at 512 and 1.5% less at 1024.
const twoPieceMin = 1024

// sendResponse writes the response head and streams the body to the client: respond's
// part after the head phases.
func (c *conn[C]) sendResponse(ctx contextT, ex *exchange[C], cc C, src upstream) *Error {
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
			out, err := s.app.UpstreamResponseBodyFilter(ctx, sess, cc, chunk, end)
			if err == nil {
				out, err = s.app.ResponseBodyFilter(ctx, sess, cc, out, end)
			}
			if err != nil {
				sess.closeAfter = true
				return asError(err, InternalError, Internal)
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
		if err := validateHeader(&ex.trl); err != nil {
			sess.closeAfter = true
			return asError(err, InternalError, Internal)
		}
		trailers = &ex.trl
	}
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

// forwardInterim passes a 1xx response (other than 100 and 101) to the client.
func (c *conn[C]) forwardInterim(ex *exchange[C], uh *h1.ResponseHead) {
	h := &ex.trl
	h.Reset()
	for _, f := range uh.Fields {
		if !isHopByHop(f.Name) {
			h.Add(intern(f.Name, ex.arena), ex.arena.String(f.Value))
		}
	}
	ex.sess.ds.interim(uh.Status, h)
	h.Reset()
}

// forwardedFields sets X-Forwarded-* and Via on the upstream request. known records
// which of up's lines are valid already, one entry per line (see unchangedFields); it is
// returned with the lines added that are valid as made.
func (c *conn[C]) forwardedFields(up *message.RequestHeader, known []message.Field) []message.Field {
	s := c.svc
	if !s.opts.NoForwardedHeaders && c.clientS != "" {
		var added bool
		if known, added = c.addForwarded(&up.Header, known); !added {
			c.setForwarded(&up.Header)
		}
	}
	if s.via != "" {
		appendVia(&up.Header, s.via)
	}
	return known
}

// setForwarded sets the X-Forwarded-* fields of h, which has one of them already: a
// trusted client's are extended or kept, an untrusted one's replaced.
func (c *conn[C]) setForwarded(h *message.Header) {
	if prior, ok := h.Lookup("X-Forwarded-For"); ok && c.trusted {
		h.Set("X-Forwarded-For", prior+", "+c.clientS)
	} else {
		h.Set("X-Forwarded-For", c.clientS)
	}
	if !c.trusted || !h.Has("X-Forwarded-Proto") {
		h.Set("X-Forwarded-Proto", c.scheme())
	}
	if host, ok := h.Lookup("Host"); ok && (!c.trusted || !h.Has("X-Forwarded-Host")) {
		h.Set("X-Forwarded-Host", host)
	}
}

// addForwarded adds the X-Forwarded-* fields to h when it has none of them, the usual
// case (an untrusted client's are dropped on arrival): one look at the fields instead of
// a search for each. It reports false, having done nothing, when h has one of them.
// known has an entry for each line of h (see unchangedFields); the new lines' entries
// are appended to it: X-Forwarded-For (an address) and X-Forwarded-Proto (http or
// https) are valid as made, X-Forwarded-Host is when the Host line it copies is known,
// the very line the codec checked. A Host a phase set, even back to an equal value, is
// not, and so its copy is checked after the phases.
func (c *conn[C]) addForwarded(h *message.Header, known []message.Field) ([]message.Field, bool) {
	host := -1
	for i, f := range h.Fields() {
		switch len(f.Name) {
		case len("Host"):
			if host < 0 && message.EqualFold(f.Name, "Host") {
				host = i
			}
		case len("X-Forwarded-For"), len("X-Forwarded-Host"), len("X-Forwarded-Proto"):
			if message.EqualFold(f.Name, "X-Forwarded-For") || message.EqualFold(f.Name, "X-Forwarded-Host") ||
				message.EqualFold(f.Name, "X-Forwarded-Proto") {
				return known, false
			}
		}
	}
	at := h.Len()
	h.Add("X-Forwarded-For", c.clientS)
	h.Add("X-Forwarded-Proto", c.scheme())
	if host >= 0 {
		h.Add("X-Forwarded-Host", h.Field(host).Value)
	}
	made := h.Fields()[at:]
	var xff message.Field
	if c.clientIP.Zone() == "" { // (a zone is an interface name: not checked here)
		xff = made[0]
	}
	known = append(known, xff, made[1])
	if host >= 0 {
		var xfh message.Field
		if known[host].Name != "" {
			xfh = made[2]
		}
		known = append(known, xfh)
	}
	return known, true
}

// scheme is the client connection's scheme, for X-Forwarded-Proto.
func (c *conn[C]) scheme() string {
	if c.tls != nil {
		return "https"
	}
	return "http"
}

func appendVia(h *message.Header, via string) {
	if prior, ok := h.Lookup("Via"); ok {
		h.Set("Via", prior+", "+via)
		return
	}
	h.Add("Via", via)
}

func upstreamReadError(err error) *Error {
	var he *h1.Error
	if errors.As(err, &he) {
		return &Error{Type: InvalidHTTP, Source: Upstream, Cause: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return &Error{Type: ConnectionClosed, Source: Upstream, Cause: err}
	}
	return asError(err, ReadError, Upstream)
}

// markTotalTimeout gives an upstream timeout that the peer's TotalTimeout caused the
// type TotalTimeout: an HTTP/1.x attempt's deadlines are capped at its end (ex.total; a
// deadline may fire up to a twentieth of its timeout early, see deadlines), an HTTP/2
// attempt's context has it as its deadline.
func (ex *exchange[C]) markTotalTimeout(e *Error, peer *Peer) {
	o := &peer.Options
	if e.Source != Upstream || o.TotalTimeout <= 0 {
		return
	}
	switch e.Type {
	case ReadTimeout, WriteTimeout, ReadError, WriteError:
	default:
		return
	}
	if errors.Is(e, context.DeadlineExceeded) ||
		e.Timeout() && !ex.total.IsZero() && time.Until(ex.total) <= max(o.readTimeout(), o.writeTimeout())/20 {
		e.Type = TotalTimeout
	}
}

// upstreamWriteError classifies a failed write to a peer; a connection the peer closed
// or reset is ConnectionClosed, which makes a pooled connection's request retryable.
func upstreamWriteError(err error) *Error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return &Error{Type: ConnectionClosed, Source: Upstream, Cause: err}
	}
	return asError(err, WriteError, Upstream)
}

// peerHost is the Host for a request that came without one.
func peerHost(p *Peer) string {
	if p.network() == "unix" {
		return "localhost"
	}
	return p.Address
}

// h1Body is the upstream of an HTTP/1.x peer's response; one per exchange, reused.
type h1Body struct {
	uc        *upConn
	timeout   time.Duration
	total     time.Time
	head      []message.Field // the head's lines valid as they came (see known)
	keepAlive bool            // the peer keeps the connection open after this response
	pool      *connPool       // where uc goes back when it is fit for another request
	pooled    bool            // set when finish returned uc to the pool
}

func (b *h1Body) known() []message.Field { return b.head }

func (b *h1Body) readBody() ([]byte, error) { return b.uc.r.ReadBody() }
func (b *h1Body) buffered() int             { return b.uc.r.Buffered() }
func (b *h1Body) readTimeout(now time.Time) { b.uc.dl.read(now, b.timeout, b.total) }
func (b *h1Body) skip()                     { b.uc.r.StartBody(h1.BodyNone, 0) }

func (b *h1Body) trailers(h *message.Header, a *arena.Arena) {
	for _, f := range b.uc.r.Trailers() {
		h.Add(a.String(f.Name), a.String(f.Value))
	}
}

func (b *h1Body) finish(sess *Session, sent bool, e *Error) {
	if !sent || !b.keepAlive {
		// (A filter that answered the client itself left the body unread: the
		// connection closes.)
		return
	}
	uc := b.uc
	if e != nil {
		if _, h1 := sess.transport().(*h1down); h1 && e.Source == Downstream && e.Type == WriteError &&
			drainResponse(uc, b.timeout) {
			// The HTTP/1.x client went away; the peer's connection is still good for
			// another request. (A reset HTTP/2 stream cuts the peer's side instead.)
			b.pool.put(uc, time.Now())
			b.pooled = true
		}
		return
	}
	if uc.r.BodyDone() && uc.r.Buffered() == 0 {
		// The response is out: its end is the time the connection went idle.
		sess.timing.End = sess.clock()
		b.pool.put(uc, sess.timing.End)
		b.pooled = true
	}
}
