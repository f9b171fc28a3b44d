package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/deadline"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/netio"
	"github.com/gotthard-proxy/gotthard/internal/upwatch"
	"github.com/gotthard-proxy/gotthard/observe"
)

// PoolStats counts upstream connections of a service.
type PoolStats struct {
	// New is the number of connections opened.
	New uint64
	// Reused is the number of times an idle connection was taken from the pool.
	Reused uint64
	// Idle is the number of idle HTTP/1.x connections in the pool now (HTTP/2
	// connections are shared, not idle or busy, and are not counted).
	Idle int
	// Peers is the number of peer identities the pool keeps state for now (idle
	// connections, TLS session caches, HTTP/2 transports); see
	// [ServiceOptions.MaxUpstreamPeers].
	Peers int
}

// ReuseRatio is Reused / (New + Reused), or 0 before any request.
func (s PoolStats) ReuseRatio() float64 {
	if s.New+s.Reused == 0 {
		return 0
	}
	return float64(s.Reused) / float64(s.New+s.Reused)
}

// upConn is one connection to a peer with its codec state.
type upConn struct {
	nc      net.Conn
	rio     *netio.Conn     // raw socket I/O, nil when the conn has no file descriptor
	rc      syscall.RawConn // the socket's (under TLS too); nil when there is no file descriptor
	tls     *tls.Conn       // nc, when the peer has TLS
	r       *h1.Reader
	w       *h1.Writer
	host    *hostPool // its peer's entry, which counts it open; nil once closed
	idleTTL time.Duration
	idleAt  time.Time
	// liveness check state, kept here so the check does not allocate
	peek   [1]byte // the read of checkTLS
	peeker upwatch.Peeker
	dl     deadline.Tracker
	// close watching (see upwatch.Watcher)
	watcher *upwatch.Watcher
	watched bool
	watchFD int32
	dead    atomic.Bool
}

func (c *upConn) close() {
	if c.watched {
		c.watcher.Remove(c.watchFD, c)
	}
	c.r.Reset(nil)
	c.w.Reset(nil)
	c.nc.Close()
	if h := c.host; h != nil {
		c.host = nil
		h.mu.Lock()
		h.conns--
		h.mu.Unlock()
	}
}

// connPool is the shared pool of upstream connections of one service, with what it
// keeps per peer identity (see hostTable). Lookups read an immutable snapshot through an
// atomic pointer; each peer has its own small lock.
type connPool struct {
	maxIdle int
	bufs    *h1.BufPool // the connections' read buffers: the service's
	wbufs   *h1.BufPool // their write buffers (see upWriteBuffer)
	limits  h1.Limits
	dialer  net.Dialer

	hosts  hostTable
	closed atomic.Bool // set before closeAll drains the pools; read under a hostPool's lock

	newConns, reused atomic.Uint64
	watch            *upwatch.Watcher // nil where not available

	// The service's name and its observers that see connections (set by NewService).
	service string
	connObs []observe.ConnObserver
	log     *slog.Logger
}

func newConnPool(maxIdle, maxHosts int, bufs *h1.BufPool, lim h1.Limits) *connPool {
	p := &connPool{maxIdle: maxIdle, bufs: bufs, limits: lim, watch: upwatch.New()}
	if bufs != nil {
		p.wbufs = h1.NewBufPool(min(bufs.Size(), upWriteBuffer))
	}
	p.hosts.init(maxHosts)
	return p
}

// upWriteBuffer bounds the write buffers of upstream connections. A request's head goes
// out through one, and the buffer is held until the answer's head arrives (see
// netio.Conn.WriteBeforeRead): with the service's 16 KiB, 160 requests waiting on their
// peers held 2.5 MiB of mostly empty buffers. A body piece of at least this size is
// written without the buffer.
const upWriteBuffer = 4 << 10

// get returns an idle live connection to the peer, or nil. With strict, every
// connection is checked with a syscall before it is handed out; otherwise one used in
// the last second is trusted unless the close watcher saw it closed (see usable). now
// is the time.
func (p *connPool) get(h *hostPool, strict bool, now time.Time) *upConn {
	if h == nil {
		return nil
	}
	for {
		h.mu.Lock()
		if now.After(h.used) {
			h.used = now
		}
		n := len(h.idle)
		if n == 0 {
			h.mu.Unlock()
			return nil
		}
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		if now.Sub(c.idleAt) >= c.idleTTL || !c.usable(now, strict) {
			c.close()
			continue
		}
		p.reused.Add(1)
		return c
	}
}

// usable reports whether an idle connection can take a request. A watched connection
// that the peer closed is marked dead when the FIN arrives, but that mark comes a moment
// later, so a request that could not be resent safely (strict), or a connection idle for
// a second or more, also gets a direct check, which catches bytes sent without a close
// too. A request that can be resent covers the remaining race with a retry.
func (c *upConn) usable(now time.Time, strict bool) bool {
	if c.dead.Load() {
		return false
	}
	if !strict && c.watched && now.Sub(c.idleAt) < time.Second {
		return true
	}
	return c.isAlive()
}

// put returns c, idle since now, to the pool, or closes it when the pool is full or
// closed.
func (p *connPool) put(c *upConn, now time.Time) {
	if p.maxIdle <= 0 || c.idleTTL <= 0 {
		c.close()
		return
	}
	// An idle connection holds no buffer: the next request takes a write buffer for its
	// head, and its answer a read buffer once it arrives. (Buffers come from a sync.Pool,
	// so giving them back and taking them again costs little.)
	c.r.Release()
	c.w.Release()
	c.idleAt = now
	h := c.host
	h.mu.Lock()
	if p.closed.Load() {
		h.mu.Unlock()
		c.close()
		return
	}
	h.idle = append(h.idle, c)
	var evict *upConn
	if len(h.idle) > p.maxIdle {
		evict = h.idle[0]
		copy(h.idle, h.idle[1:])
		h.idle[len(h.idle)-1] = nil
		h.idle = h.idle[:len(h.idle)-1]
	}
	h.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

// sweep closes connections that have been idle for longer than their timeout (HTTP/2
// ones of our client too; net/http's Transport times its own), and removes the
// entries of peers with no connection open that have not been used for a while (see
// hostTable). now is the time.
func (p *connPool) sweep(now time.Time) {
	var expired []*upConn
	var closing []h2RoundTripper
	var sets []*h2Conns
	t := &p.hosts
	t.mu.Lock()
	removed := false
	for _, h := range t.all {
		h.mu.Lock()
		for _, e := range h.h2.transports {
			if s, ok := e.tr.(*h2Conns); ok {
				sets = append(sets, s)
			}
		}
		j := 0
		for _, c := range h.idle {
			idle := now.Sub(c.idleAt)
			if idle >= c.idleTTL {
				expired = append(expired, c)
				continue
			}
			h.idle[j] = c
			j++
		}
		clear(h.idle[j:])
		h.idle = h.idle[:j]
		if h.prunable(now, false) {
			closing = t.remove(h, closing)
			removed = true
		}
		h.mu.Unlock()
	}
	if removed || t.missing > 0 {
		t.publish()
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
	for _, tr := range closing {
		tr.CloseIdleConnections()
	}
	for _, s := range sets { // (those just dropped were closed above: nothing left)
		s.sweepIdle(now)
	}
}

// closeAll closes every idle connection and makes later puts close theirs.
func (p *connPool) closeAll() {
	p.closed.Store(true)
	var idle []*upConn
	var closing []h2RoundTripper
	t := &p.hosts
	t.mu.Lock()
	for _, h := range t.all {
		h.mu.Lock()
		idle = append(idle, h.idle...)
		h.idle = nil
		for _, e := range h.h2.transports {
			closing = append(closing, e.tr)
		}
		h.mu.Unlock()
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	for _, tr := range closing {
		tr.CloseIdleConnections()
	}
}

func (p *connPool) stats() PoolStats {
	s := PoolStats{New: p.newConns.Load(), Reused: p.reused.Load()}
	t := &p.hosts
	t.mu.Lock()
	s.Peers = len(t.all)
	for _, h := range t.all {
		h.mu.Lock()
		s.Idle += len(h.idle)
		h.mu.Unlock()
	}
	t.mu.Unlock()
	return s
}

// dial opens a new connection to peer.
func (p *connPool) dial(ctx context.Context, peer *Peer) (*upConn, error) {
	nc, e := p.dialConn(ctx, peer, "http/1.1")
	if e != nil {
		return nil, e
	}
	o := &peer.Options
	rw := netio.Wrap(nc)
	c := &upConn{
		dl:      deadline.New(nc),
		nc:      nc,
		r:       h1.NewReader(rw, p.bufs, p.limits),
		w:       h1.NewWriter(rw, p.wbufs),
		host:    p.acquire(peer.key(), time.Now(), o),
		idleTTL: o.idleTimeout(),
	}
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		// The socket under TLS is checked and watched like a plain one (see isAlive).
		c.tls, raw = tc, tc.NetConn()
	}
	if sc, ok := raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peeker.Init(rc)
		}
	}
	c.rio, _ = rw.(*netio.Conn)
	c.watcher = p.watch
	c.watchFD, c.watched = p.watch.Add(c.rc, c)
	return c, nil
}

// dialConn opens a connection to peer, with a TLS handshake that offers alpn if the
// peer has TLS, and counts it as new.
func (p *connPool) dialConn(ctx context.Context, peer *Peer, alpn string) (net.Conn, *Error) {
	o := &peer.Options
	d := p.dialer
	d.Timeout = o.connectTimeout()
	d.KeepAlive = o.keepAlive()
	start := time.Now()
	nc, err := d.DialContext(ctx, peer.network(), peer.Address)
	if err != nil {
		t := ConnectError
		if isRefused(err) {
			t = ConnectRefused
		}
		e := asError(err, t, Upstream)
		e.Retry = true
		p.observeUpstreamConn(peer, start, time.Time{}, 0, nil, e)
		return nil, e
	}
	if peer.ProxyProtocol != 0 {
		if err := sendProxyHeader(nc, peer); err != nil {
			nc.Close()
			e := asError(err, ConnectError, Upstream)
			e.Retry = true
			p.observeUpstreamConn(peer, start, time.Time{}, 0, nil, e)
			return nil, e
		}
	}
	connected := time.Now()
	var hs time.Duration
	var cs *tls.ConnectionState
	if peer.TLS != nil {
		nc, err = p.handshake(ctx, nc, peer, alpn)
		hs = time.Since(connected)
		if err != nil {
			e := asError(err, ConnectError, Upstream)
			e.Retry = true
			p.observeUpstreamConn(peer, start, connected, hs, nil, e)
			return nil, e
		}
		if len(p.connObs) > 0 {
			st := nc.(*tls.Conn).ConnectionState()
			cs = &st
		}
	}
	p.newConns.Add(1)
	p.observeUpstreamConn(peer, start, connected, hs, cs, nil)
	return nc, nil
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
