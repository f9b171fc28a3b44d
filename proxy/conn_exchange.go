package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/message"
)

// abortUpstream cuts the upstream side of the request in progress; the client has gone.
// It is called from the HTTP/2 connection's goroutine, and must not block.
func (ex *exchange[C]) abortUpstream() {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	ex.aborted.Store(true)
	if ex.upNC != nil {
		ex.upNC.SetDeadline(aLongTimeAgo)
	}
	if ex.upCancel != nil {
		ex.upCancel()
	}
}

// clientGone reports whether abortUpstream ran: the client reset the request's stream,
// or its connection ended.
func (ex *exchange[C]) clientGone() bool { return ex.aborted.Load() }

// setUpstream records the upstream connection or attempt in use, so that abortUpstream
// can cut it; it reports false if the request was already aborted.
func (ex *exchange[C]) setUpstream(nc net.Conn, cancel context.CancelFunc) bool {
	ex.abortMu.Lock()
	defer ex.abortMu.Unlock()
	ex.upNC, ex.upCancel = nc, cancel
	if ex.drainCut.Load() { // a gRPC call that CloseStreams ended (see cutForDrain)
		if nc != nil {
			nc.SetDeadline(aLongTimeAgo)
		}
		if cancel != nil {
			cancel()
		}
	}
	return !ex.aborted.Load() || nc == nil && cancel == nil
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
	gone := ex.aborted.Load()
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
	ex.aborted.Store(true)
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

	reqKnown []message.Field // sess.req's lines as the codec gave them (see knownFields)
	known    []message.Field // the valid lines of the header the phases have now
	num      [20]byte        // scratch for formatting numbers without allocating
	h1b      h1Body          // the body source of an HTTP/1.x peer's response
	h2d      h2down          // the downstream of an HTTP/2 request
	abortFn  func()          // ex.abortUpstream, made once per exchange
	obs      *obsState       // for the service's observers; nil without
	cache    cacheState      // the cache's part in the request (see serveCache)
	mods     []modRequest    // the modules' states for this request (see moduleRequestFilters)
	// abortMu pairs the client's leaving with the upstream side in use, so that the
	// side cut is the one this request uses. aborted is set under it and read without.
	abortMu         sync.Mutex
	aborted         atomic.Bool        // the client went away: cut the upstream side
	upNC            net.Conn           // the HTTP/1.x upstream connection in use
	upCancel        context.CancelFunc // ends the HTTP/2 upstream attempt in use
	gotResponseByte bool               // the peer answered this attempt
	lastPeer        bool               // the attempt's peer is the conn's lastPeer, with its lastKey (see validPeer)
	requestSent     bool               // writing the request to the peer began in this attempt
	peerOpts        *PeerOptions
	total           time.Time // the attempt's TotalTimeout deadline, or zero

	// A gRPC call, as one of its connection's long-lived streams (see proxyGRPC).
	// grpcDrains, grpcUp and grpcMsgs are the request's goroutine's; drained is set by
	// CloseStreams, drainCut (under abortMu) by the cut that follows.
	grpcDrains *drainSet               // the connection's; nil if the request is no gRPC call
	grpcUp     *atomic.Pointer[upConn] // an HTTP/1.x client connection's upstream in use
	grpcMsgs   grpcMsgs                // the messages of the response body written so far
	drained    atomic.Bool
	drainCut   atomic.Bool
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
	if ex.obs == nil && len(c.svc.obs.all) > 0 {
		ex.obs = newObsState(len(c.svc.obs.all))
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
	if ex.cache.c != nil {
		ex.cache.reset(nil)
	}
	ex.sess.reset()
	ex.sess.ds = nil
	if ex.obs != nil {
		ex.obs.reset()
	}
	if len(ex.mods) > 0 { // (their Done ran in logging)
		clear(ex.mods)
		ex.mods = ex.mods[:0]
	}
	ex.sess.clientAddr, ex.sess.serverAddr = nil, nil
	ex.h1b = h1Body{}
	clear(ex.reqKnown)
	clear(ex.known)
	ex.reqKnown, ex.known = ex.reqKnown[:0], ex.known[:0]
	ex.aborted.Store(false)
	ex.upNC, ex.upCancel = nil, nil
	if ex.grpcDrains != nil {
		ex.grpcDrains, ex.grpcUp, ex.grpcMsgs = nil, nil, grpcMsgs{}
		ex.drained.Store(false)
		ex.drainCut.Store(false)
	}
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
