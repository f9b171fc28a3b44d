package proxy

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

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
	uc.dl.Write(now, o.writeTimeout(), total)
	if sess.req.Method == "CONNECT" { // allowed, or run would not have let it by
		return c.connectTunnel(sess, uc)
	}

	up, e := c.upstreamRequest(ctx, ex, cc, peer)
	if e != nil {
		return e
	}
	c.observeUpstreamRequest(ex, up, "HTTP/1.1")
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
	writeFraming(w, kind, n, &ex.num)
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
		uc.dl.Read(sess.clock(), min(o.readTimeout(), earlyAnswerWait), total)
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

	// The response head, skipping or forwarding interim responses. The wait for it holds
	// no read buffer: one is taken when the answer is there (see h1.Reader's fill).
	uc.r.Release()
	if early == nil {
		if kind != h1.BodyNone {
			now = sess.clock() // the body took its time: the wait for the answer starts now
		}
		uc.dl.Read(now, o.readTimeout(), total)
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
	c.addRelayFields(sess, &resp.Header)
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
	uc.dl.Read(time.Now(), min(timeout, time.Second), time.Time{})
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
			uc.dl.Write(t, writeTimeout, ex.total)
		}
		chunk, rerr := sess.readBody()
		rerr = sess.rate.end(rerr)
		if rerr != nil && rerr != io.EOF {
			sess.closeAfter = true
			return clientReadError(rerr)
		}
		end := rerr == io.EOF
		if len(chunk) > 0 || end {
			out, err := c.requestBodyFilters(ctx, ex, cc, chunk, end)
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

// releaseUpstream gives an HTTP/1.x peer's connection back to the pool once its response
// was read whole, before the response's end goes to an HTTP/2 client (src is the
// response's source, a cache's or a peer's). Such a client may send its next request on
// another stream the moment it has that end, and the request should find the connection
// idle rather than open another. An HTTP/1.x client's next request comes after
// h1Body.finish, on the same goroutine.
func (c *conn[C]) releaseUpstream(ex *exchange[C], src upstream) {
	b, ok := src.(*h1Body)
	if !ok || ex.sess.transport() != &ex.h2d || !b.reusable() {
		return
	}
	// Nothing of this request may cut the connection once another request can have it.
	ex.setUpstream(nil, nil)
	c.up.CompareAndSwap(b.uc, nil) // (an HTTP/2 connection's streams share c.up)
	b.putBack(time.Now())
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
func (b *h1Body) readTimeout(now time.Time) { b.uc.dl.Read(now, b.timeout, b.total) }
func (b *h1Body) skip()                     { b.uc.r.StartBody(h1.BodyNone, 0) }

func (b *h1Body) trailers(h *message.Header, a *arena.Arena) {
	for _, f := range b.uc.r.Trailers() {
		h.Add(a.String(f.Name), a.String(f.Value))
	}
}

// reusable reports whether the peer's connection, not yet back in the pool, may serve
// another request: the response was read whole and nothing follows it.
func (b *h1Body) reusable() bool {
	return !b.pooled && b.keepAlive && b.uc.r.BodyDone() && b.uc.r.Buffered() == 0
}

// putBack returns the peer's connection, idle since now, to the pool.
func (b *h1Body) putBack(now time.Time) {
	b.pool.put(b.uc, now)
	b.pooled = true
}

func (b *h1Body) finish(sess *Session, sent bool, e *Error) {
	if b.pooled || !sent || !b.keepAlive { // (pooled: by releaseUpstream)
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
			b.putBack(time.Now())
		}
		return
	}
	if b.reusable() {
		// The response is out: its end is the time the connection went idle.
		sess.timing.End = sess.clock()
		b.putBack(sess.timing.End)
	}
}
