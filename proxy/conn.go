package proxy

import (
	"crypto/tls"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/deadline"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/idle"
	"github.com/gotthard-proxy/gotthard/internal/netio"
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
//
// The connection is served by one goroutine at a time: its own (serve) until it first
// parks, then a worker for each burst of requests (resume). "The serving goroutine" below
// is whichever of them serves it now; it hands the connection on through workDone, the
// poller's wake or the parking bits, which order its fields' accesses.
type conn[C any] struct {
	// Immutable after newConn (tls: set by the handshake, before the first request).
	svc      *Service[C]
	nc       net.Conn
	r        *h1.Reader
	w        *h1.Writer
	dl       deadline.Tracker
	h1       h1down // the downstream of this connection's HTTP/1.x requests
	clientIP netip.Addr
	clientS  string // clientIP as text, made once
	trusted  bool
	// ppPeer is the last peer with ProxyProtocol this connection used, and its copy
	// with the connection's addresses (see upstreamPeer).
	ppPeer atomic.Pointer[[2]*Peer]
	tls    *tls.ConnectionState // after the handshake on a TLS endpoint; nil otherwise
	// obs is the connection's state for the service's connection observers; nil without
	// (see observe.go). Set by serve before anything else, cleared by end.
	obs *connObs

	// Owned by the serving goroutine.
	served   int
	keep     bool          // set by work: the connection may serve another request
	workDone chan struct{} // work has finished
	lastEnd  time.Time     // when the last response ended
	// The upstream pool its last request used (see hostPool), and its peer, which
	// passed Validate with that key (see validPeer).
	lastPeer *Peer
	lastKey  poolKey
	lastHost *hostPool

	// Atomic: read by Shutdown, Close and the service's client watch.
	state atomic.Int32
	up    atomic.Pointer[upConn] // the upstream connection in use, for Close to cut
	// waitEx is the exchange whose request waits for the peer's answer, while it does,
	// for the service's client watch (see Service.watchClients).
	waitEx atomic.Pointer[exchange[C]]
	h2c    atomic.Pointer[h2.Conn] // set when the connection turned out to speak HTTP/2

	// drains holds the long-lived streams of its requests, for Service.CloseStreams;
	// safe for concurrent use.
	drains drainSet

	idleParking   // shared with the service's idle poller
	hotServing[C] // owned by the serving goroutine
}

// idleParking is a connection's part in the service's idle poller (see parkIdle): the
// connection parks with it when idle. detached is set when it first does, and from then
// on the connection has no goroutine of its own; workers serve it as its client sends.
type idleParking struct {
	detached atomic.Bool
	park     atomic.Int32 // parkedBit, pendingBit: whoever clears parkedBit owns the connection
	wokenAt  time.Time    // when the poller saw its input, for the request's start; set before the hand-off
	poll     idle.Handle  // the poller's own state of the connection (also its hot wait's)
}

// hotServing is the state of a connection served hot (see hot.go).
type hotServing[C any] struct {
	hotW    *worker[C]   // the worker serving it hot
	hotFn   func() bool  // c.hotServe, made once
	hotExit int          // why hotServe stopped
	pending *exchange[C] // a request whose head hotServe read, to serve outside the wait
}

func (s *Service[C]) newConn(nc net.Conn) *conn[C] {
	rw := netio.Wrap(nc)
	c := &conn[C]{
		dl:  deadline.New(nc),
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
	c.observeConnOpen()
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
		c.dl.Read(time.Now(), keepalive, time.Time{})
		if c.r.Buffered() == 0 {
			// Idle: hold no buffers while waiting for the next request.
			c.w.Release()
			if c.served > 0 && c.tls == nil && s.idle.Register(c) {
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
	c.svc.idle.Parked(&c.poll)
	for {
		st := c.park.Load()
		if st&pendingBit != 0 {
			if c.park.CompareAndSwap(st, 0) {
				return false
			}
			continue
		}
		if c.park.CompareAndSwap(st, parkedBit) {
			// Close may have run between the caller's last look and now: it took the
			// connection for an active one, whose goroutine sees the close, and closed
			// its socket, which leaves the poller's set without a word. Nobody else
			// would end it before the keep-alive sweep, and Close waits for it.
			if c.svc.ctx.Err() != nil && c.unpark() {
				c.end()
			}
			return true
		}
	}
}

// Wake is called by the poller when the client sent something, seen at now: it reports
// whether the connection was parked, and is now the caller's (woken at now); otherwise
// it leaves a note for parkIdle.
func (c *conn[C]) Wake(now time.Time) bool {
	for {
		st := c.park.Load()
		if st&parkedBit != 0 {
			if c.park.CompareAndSwap(st, 0) {
				c.wokenAt = now
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
	c.svc.idle.Forget(c)
	c.nc.Close()
	c.observeConnClose()
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
		c.dl.Read(c.wokenAt, keepalive, time.Time{})
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
		c.dl.Read(time.Now(), durOr(s.opts.KeepaliveTimeout, 60*time.Second), time.Time{})
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
