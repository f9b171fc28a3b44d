package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/netio"
	"github.com/gotthard-proxy/gotthard/message"
)

// Connection states, for graceful shutdown.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
	stateH2 // an HTTP/2 connection: Shutdown sends it GOAWAY
)

// conn is one client connection. It keeps only what an idle connection needs; the state
// of a request lives in an exchange taken from a pool while the request runs.
type conn[C any] struct {
	svc      *Service[C]
	nc       net.Conn
	r        *h1.Reader
	w        *h1.Writer
	state    atomic.Int32
	served   int
	keep     bool          // set by work: the connection may serve another request
	workDone chan struct{} // work has finished
	// The connection parks with the service's idlePoller when idle (see parkIdle):
	// detached is set when it first does, and from then on it has no goroutine of its
	// own; workers serve it as its client sends.
	detached atomic.Bool
	park     atomic.Int32 // parkedBit, pendingBit
	parkedAt atomic.Int64 // the poller's tick when parked
	wokenAt  time.Time    // when the poller saw its input, for the request's start
	pollFD   int32        // its descriptor in the poller's set, or 0
	lastEnd  time.Time    // when the last response ended

	// Serving hot (see hot.go).
	hotSince atomic.Int64 // the hot clock when its wait began; 0 while it serves; -1 once ended
	hotW     *worker[C]   // the worker serving it hot
	hotFn    func() bool  // c.hotServe, made once
	hotExit  int          // why hotServe stopped
	pending  *exchange[C] // a request whose head hotServe read, to serve outside the wait

	// The upstream pool its last request used (see hostPool).
	lastPeer *Peer
	lastKey  poolKey
	lastHost *hostPool
	up       atomic.Pointer[upConn] // the upstream connection in use, for Close to cut
	// waitEx is the exchange whose request waits for the peer's answer, while it does,
	// for the service's client watch (see Service.watchClients).
	waitEx atomic.Pointer[exchange[C]]

	dl  deadlines
	h1  h1down                  // the downstream of this connection's HTTP/1.x requests
	h2c atomic.Pointer[h2.Conn] // set when the connection turned out to speak HTTP/2

	clientIP netip.Addr
	clientS  string // clientIP as text, made once
	trusted  bool
	tls      *tls.ConnectionState // after the handshake on a TLS endpoint; nil otherwise
}

// abortUpstream cuts the upstream side of the request in progress; the client has gone.
// It is called from the HTTP/2 connection's goroutine, and must not block.
func (ex *exchange[C]) abortUpstream() {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	ex.aborted = true
	if ex.upNC != nil {
		ex.upNC.SetDeadline(aLongTimeAgo)
	}
	if ex.upCancel != nil {
		ex.upCancel()
	}
}

// clientGone reports whether abortUpstream ran: the client reset the request's stream,
// or its connection ended.
func (ex *exchange[C]) clientGone() bool {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	return ex.aborted
}

// setUpstream records the upstream connection or attempt in use, so that abortUpstream
// can cut it; it reports false if the request was already aborted.
func (ex *exchange[C]) setUpstream(nc net.Conn, cancel context.CancelFunc) bool {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	ex.upNC, ex.upCancel = nc, cancel
	return !ex.aborted || nc == nil && cancel == nil
}

// watchClient makes the wait of ex for the answer on upstream connection nc one that
// the service's client watch cuts if the HTTP/1.x client goes away meanwhile (see
// Service.watchClients).
func (c *conn[C]) watchClient(ex *exchange[C], nc net.Conn) {
	ex.abortMu.Lock()
	ex.upNC = nc
	c.waitEx.Store(ex)
	ex.abortMu.Unlock()
}

// unwatchClient ends what watchClient began; it reports whether the client went away
// meanwhile (and nc was cut).
func (c *conn[C]) unwatchClient(ex *exchange[C]) bool {
	ex.abortMu.Lock()
	c.waitEx.Store(nil)
	ex.upNC = nil
	gone := ex.aborted
	ex.abortMu.Unlock()
	return gone
}

// clientLeft cuts the wait of ex for the peer's answer, if ex still waits on c; the
// client watch calls it when c's client has closed.
func (c *conn[C]) clientLeft(ex *exchange[C]) {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	if c.waitEx.Load() != ex || ex.upNC == nil {
		return
	}
	ex.aborted = true
	ex.upNC.SetDeadline(aLongTimeAgo)
}

// exchange is the state of one request on a client connection.
type exchange[C any] struct {
	head   h1.RequestHead
	sess   Session
	upReq  message.RequestHeader
	upHead h1.ResponseHead
	resp   message.ResponseHeader
	trl    message.Header
	arena  *arena.Arena
	method []byte // the request method, for response framing

	reqKnown        []message.Field // sess.req's lines as the codec gave them (see knownFields)
	known           []message.Field // the valid lines of the header the phases have now
	num             [20]byte        // scratch for formatting numbers without allocating
	h1b             h1Body          // the body source of an HTTP/1.x peer's response
	h2d             h2down          // the downstream of an HTTP/2 request
	abortFn         func()          // ex.abortUpstream, made once per exchange
	abortMu         sync.Mutex
	aborted         bool               // the client went away: cut the upstream side
	upNC            net.Conn           // the HTTP/1.x upstream connection in use
	upCancel        context.CancelFunc // ends the HTTP/2 upstream attempt in use
	gotResponseByte bool               // the peer answered this attempt
	requestSent     bool               // writing the request to the peer began in this attempt
	peerOpts        *PeerOptions
	total           time.Time // the attempt's TotalTimeout deadline, or zero
}

func (s *Service[C]) newConn(nc net.Conn) *conn[C] {
	rw := netio.Wrap(nc)
	c := &conn[C]{
		dl:  deadlines{nc: nc},
		svc: s,
		nc:  nc,
		r:   h1.NewReader(rw, s.bufs, s.limits),
		w:   h1.NewWriter(rw, s.bufs),

		workDone: make(chan struct{}, 1),
	}
	c.h1 = h1down{r: c.r, w: c.w, dl: &c.dl}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.clientIP = ap.Addr().Unmap()
		c.clientS = c.clientIP.String()
		c.trusted = trusted(c.clientIP, s.opts.TrustedProxies)
	}
	return c
}

// serve is the connection's goroutine: it waits for requests and hands each burst of
// them to a worker (see workers.go).
func (c *conn[C]) serve() {
	s := c.svc
	handedOff := false
	defer func() {
		if !handedOff {
			c.end()
		}
	}()
	if !c.handshake() {
		return
	}
	if c.tls != nil && c.tls.NegotiatedProtocol == "h2" {
		c.serveH2(nil)
		return
	}
	keepalive := durOr(s.opts.KeepaliveTimeout, 60*time.Second)
	for {
		// The next head must arrive within the keep-alive timeout, also when part of it
		// is already buffered (pipelining).
		c.dl.read(time.Now(), keepalive, time.Time{})
		if c.r.Buffered() == 0 {
			// Idle: hold no buffers while waiting for the next request.
			c.w.Release()
			if c.served > 0 && c.tls == nil && s.idle.register(c) {
				// From here on the connection has no goroutine while idle: the
				// service's idle poller wakes a worker when the client sends.
				c.detached.Store(true)
				handedOff = true
				c.r.Release()
				if !c.parkIdle() {
					s.dispatch(c) // the client sent meanwhile
				}
				return
			}
			if c.served > 0 {
				// Let the other connections run first: by the time this one reads, its
				// client has often sent the next request, which spares a read that
				// would find nothing and a trip through the poller.
				runtime.Gosched()
			}
			if err := c.r.FillIdle(); err != nil {
				return
			}
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by Shutdown
		}
		if c.served == 0 && c.tls == nil && isPreface(c.r.Peek()) {
			c.serveH2(c.r.Peek()) // h2c by prior knowledge
			return
		}
		s.dispatch(c)
		<-c.workDone
		if !c.keep {
			return
		}
		c.state.Store(stateIdle)
		if s.closing.Load() { // Shutdown may have missed this connection while active
			return
		}
	}
}

// Parking states of a detached connection.
const (
	parkedBit  = 1 // idle, waiting in the poller: whoever clears the bit owns the connection
	pendingBit = 2 // the poller saw input while the connection was not parked
)

// parkIdle parks the idle connection, which its caller then no longer owns, and
// reports true; or, if the poller saw input since the connection was last parked, it
// reports false, and the caller serves on.
func (c *conn[C]) parkIdle() bool {
	c.parkedAt.Store(c.svc.idle.tick())
	for {
		st := c.park.Load()
		if st&pendingBit != 0 {
			if c.park.CompareAndSwap(st, 0) {
				return false
			}
			continue
		}
		if c.park.CompareAndSwap(st, parkedBit) {
			return true
		}
	}
}

// wake is called by the poller when the client sent something: it reports whether the
// connection was parked, and is now the caller's; otherwise it leaves a note for
// parkIdle.
func (c *conn[C]) wake() bool {
	for {
		st := c.park.Load()
		if st&parkedBit != 0 {
			if c.park.CompareAndSwap(st, 0) {
				return true
			}
			continue
		}
		if c.park.CompareAndSwap(st, st|pendingBit) {
			return false
		}
	}
}

// unpark takes a parked connection, to end it; it reports false if the connection was
// not parked.
func (c *conn[C]) unpark() bool {
	for {
		st := c.park.Load()
		if st&parkedBit == 0 {
			return false
		}
		if c.park.CompareAndSwap(st, 0) {
			return true
		}
	}
}

// end closes the connection and forgets it. Its owner calls it, once.
func (c *conn[C]) end() {
	c.state.Store(stateClosed)
	c.r.Reset(nil)
	c.w.Reset(nil)
	c.svc.idle.forget(c)
	c.nc.Close()
	c.svc.removeConn(c)
}

// resume serves a detached connection that the poller found readable, on a worker,
// and parks it again (or ends it) when it is idle.
func (c *conn[C]) resume(w *worker[C]) {
	s := c.svc
	keepalive := durOr(s.opts.KeepaliveTimeout, 60*time.Second)
	for {
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			c.end()
			return
		}
		if c.wokenAt.IsZero() { // (the poller sets it; not when input came meanwhile)
			c.wokenAt = time.Now()
		}
		c.dl.read(c.wokenAt, keepalive, time.Time{})
		err := c.r.FillNow()
		switch {
		case err == h1.ErrWouldBlock:
			// Input seen earlier was read already (with the request before).
			c.wokenAt = time.Time{}
		case err != nil:
			c.end()
			return
		default:
			woken, lastEnd := c.wokenAt, c.lastEnd
			c.work(w)
			if !c.keep {
				c.end()
				return
			}
			if c.hotEligible(woken, lastEnd) {
				switch c.serveHot(w) {
				case hotEnded:
					c.end()
					return
				case hotBuffered:
					c.state.Store(stateIdle)
					continue
				}
			}
			c.w.Release()
		}
		c.r.Release() // a parked connection holds no buffer
		c.state.Store(stateIdle)
		if s.closing.Load() {
			c.end()
			return
		}
		if c.parkIdle() {
			return
		}
	}
}

// work serves requests on the worker goroutine w: the one that is ready (or whose head
// hotServe read), and any pipelined after it. It sets c.keep to whether the connection
// stays open.
func (c *conn[C]) work(w *worker[C]) {
	s := c.svc
	for {
		var keep bool
		if ex := c.pending; ex != nil {
			c.pending = nil
			keep = c.finishRequest(ex, w, c.handleHead(ex, nil))
		} else {
			ex := c.getExchange(w)
			keep = c.finishRequest(ex, w, c.handle(ex))
		}
		if !keep || c.r.Buffered() == 0 {
			return
		}
		c.dl.read(time.Now(), durOr(s.opts.KeepaliveTimeout, 60*time.Second), time.Time{})
	}
}

// finishRequest ends a request that handle served, and sets and returns c.keep: whether
// the connection may serve another.
func (c *conn[C]) finishRequest(ex *exchange[C], w *worker[C], keep bool) bool {
	s := c.svc
	c.lastEnd = ex.sess.timing.End
	c.putExchange(ex, w)
	c.served++
	c.keep = keep && c.served < c.maxRequests() && !s.closing.Load()
	return c.keep
}

// maxRequests is how many requests the connection may serve.
func (c *conn[C]) maxRequests() int {
	switch n := c.svc.opts.MaxRequestsPerConn; {
	case n == 0:
		return 10000
	case n < 0:
		return int(^uint(0) >> 1)
	default:
		return n
	}
}

// getExchange returns a fresh exchange: the one kept by the worker w, if any (w may be
// nil), or one from the service's pool.
func (c *conn[C]) getExchange(w *worker[C]) *exchange[C] {
	var ex *exchange[C]
	if w != nil && w.ex != nil {
		ex, w.ex = w.ex, nil
	} else {
		ex, _ = c.svc.exchanges.Get().(*exchange[C])
		if ex == nil {
			ex = new(exchange[C])
		}
		ex.arena = c.svc.arenas.Get()
	}
	// (An exchange is reset when it is put back, so it comes out clean.)
	ex.sess.ds = &c.h1
	ex.sess.closing = &c.svc.closing
	ex.sess.date = &c.svc.date
	ex.sess.bodyTimeout = durOr(c.svc.opts.ClientBodyTimeout, 60*time.Second)
	ex.sess.rate = c.svc.bodyRate
	ex.sess.clientAddr = c.nc.RemoteAddr()
	ex.sess.serverAddr = c.nc.LocalAddr()
	ex.sess.tls = c.tls
	ex.sess.requestIndex = c.served
	return ex
}

// putExchange resets ex and gives it to the worker w to keep, or back to the pool.
func (c *conn[C]) putExchange(ex *exchange[C], w *worker[C]) {
	if c.waitEx.Load() == ex { // (a wait for the peer that a panic ended)
		c.unwatchClient(ex)
	}
	ex.sess.reset()
	ex.sess.ds = nil
	ex.sess.clientAddr, ex.sess.serverAddr = nil, nil
	ex.h1b = h1Body{}
	clear(ex.reqKnown)
	clear(ex.known)
	ex.reqKnown, ex.known = ex.reqKnown[:0], ex.known[:0]
	ex.aborted, ex.upNC, ex.upCancel = false, nil, nil
	clear(ex.h2d.fields)
	ex.h2d = h2down{fields: ex.h2d.fields[:0]}
	ex.upReq.Reset()
	ex.resp.Reset()
	ex.trl.Reset()
	ex.head.Reset()
	ex.upHead.Reset()
	if w != nil && w.ex == nil {
		w.ex = ex // with its arena: strings made from it stay valid, as in the pool
		return
	}
	c.svc.arenas.Put(ex.arena)
	ex.arena = nil
	c.svc.exchanges.Put(ex)
}

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
			s.log.Error("panic in request", "err", perr, "method", sess.req.Method,
				"target", sess.req.Target, "client", c.clientS, "stack", string(debug.Stack()))
			sess.closeAfter = true
			if !sess.respStarted {
				c.writeErrorPage(sess, 500)
			}
			reqErr = perr
			keep = false
			c.logging(ctx, sess, cc, reqErr)
		}
	}()
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
	c.logging(ctx, sess, cc, reqErr)
	return !sess.closeAfter
}

// logging runs the Logging phase, itself guarded against panics.
func (c *conn[C]) logging(ctx contextT, sess *Session, cc C, err error) {
	if sess.timing.End.IsZero() { // (set already when the upstream connection went idle)
		sess.timing.End = sess.clock()
	}
	defer func() {
		if p := recover(); p != nil {
			c.svc.log.Error("panic in Logging phase", "err", p, "stack", string(debug.Stack()))
		}
	}()
	c.svc.app.Logging(ctx, sess, cc, err)
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
		c.svc.log.Warn("not HTTP: connection closed", "client", c.clientS, "reason", he.Reason)
	case errors.As(err, &he):
		c.svc.log.Warn("bad request", "client", c.clientS, "status", he.Status, "reason", he.Reason)
		ex.sess.closeAfter = true
		c.writeErrorPage(&ex.sess, he.Status)
	case errors.Is(err, io.EOF):
		// Closed between requests: nothing to say.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && c.r.Buffered() > 0 {
			c.svc.log.Warn("request head timeout", "client", c.clientS)
			ex.sess.closeAfter = true
			c.writeErrorPage(&ex.sess, 408)
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			c.svc.log.Warn("client closed connection mid-head", "client", c.clientS)
		}
	}
	return false
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
	return c.proxy(ctx, ex, cc)
}

// bodyBufferLimit is the limit of a body read whole by ServiceOptions.BufferRequestBody.
func (s *Service[C]) bodyBufferLimit() int64 {
	if s.opts.RequestBodyBufferLimit > 0 {
		return s.opts.RequestBodyBufferLimit
	}
	return 1 << 20
}

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
	if sess.respStarted || errors.Is(e, ErrShutdown) {
		// Part of the response is out: the only way to tell the client is to close.
		// Or the service is closing the client's connection: nothing can be said.
		sess.closeAfter = true
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
