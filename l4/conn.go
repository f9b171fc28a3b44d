package l4

import (
	"github.com/gotthard-proxy/gotthard/internal/proxyproto"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/tlspeek"
)

// conn is one client connection being served. It holds, in one allocation, all that
// its connection keeps for its life: its Session, its context, and the copy's state
// (f), which is what an idle connection is reduced to.
type conn[C any] struct {
	svc *Service[C]
	ep  *endpoint // the endpoint it came on (TLS, passthrough)

	sess Session
	cx   C

	mu       sync.Mutex
	client   net.Conn // the accepted connection; changed by setConns only
	up       net.Conn // the upstream connection once connected
	cut      error    // why abort cut the connection; first one wins
	finished bool
	started  bool     // the copy, f, started
	slot     int32    // its index in the service's conns; under the service's mu
	obs      *connObs // for ServiceOptions.Observers; nil without

	f flow
}

// abort cuts the connection with err (the first cause wins): both sockets are closed,
// which ends any read, write, handshake or dial in progress.
func (c *conn[C]) abort(err error) {
	c.mu.Lock()
	if c.cut == nil && !c.finished {
		c.cut = err
	}
	client, up, f := c.client, c.up, c.copying()
	c.mu.Unlock()
	client.Close()
	if up != nil {
		up.Close()
	}
	if f != nil {
		f.kill(err) // the directions parked without a goroutine end now
	}
}

// copying returns the connection's copy once started, or nil; c.mu is held.
func (c *conn[C]) copying() *flow {
	if !c.started {
		return nil
	}
	return &c.f
}

// setConns records the sockets that the copy detached or attached again (see
// flow.detach): abort and finish close those.
func (c *conn[C]) setConns(client, up net.Conn) {
	c.mu.Lock()
	c.client, c.up = client, up
	c.mu.Unlock()
}

// cause returns the error abort was called with, or nil.
func (c *conn[C]) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// setUp records the upstream connection; it reports false (and closes up) if the
// connection was cut meanwhile.
func (c *conn[C]) setUp(up net.Conn) bool {
	c.mu.Lock()
	cut := c.cut
	if cut == nil {
		c.up = up
	}
	c.mu.Unlock()
	if cut != nil {
		up.Close()
		return false
	}
	return true
}

func (c *conn[C]) serve() {
	s := c.svc
	if pc, ok := c.client.(*proxyproto.Conn); ok {
		// The PROXY protocol header first: its addresses are the session's. (A refused
		// one closed the connection and was logged.)
		if _, err := pc.Header(); err != nil {
			c.client.Close()
			s.done(c)
			return
		}
	}
	c.sess.start = time.Now()
	c.sess.setAddrs(c.client.RemoteAddr(), c.client.LocalAddr())
	sess := &c.sess
	c.observeOpen()
	f, err := c.phases(sess, &c.cx)
	if f == nil {
		c.finish(err)
		return
	}
	f.own = c
	c.mu.Lock()
	c.started = true
	cut := c.cut
	c.mu.Unlock()
	if cut != nil {
		f.mu.Lock()
		f.dead = true // the sockets are closed: no half parks
		f.mu.Unlock()
	}
	// The copy: this goroutine runs one direction until it is done or parks; the
	// last direction to end calls finish.
	f.start(&sess.bytes)
}

// phases runs the connection's phases up to the copy, recovering a panic in them; it
// returns the copy to start, or the error that ended the connection.
func (c *conn[C]) phases(sess *Session, cx *C) (f *flow, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: %v", ErrPanic, p)
			c.svc.log.Error("l4: panic in a phase", "client", sess.clientString(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	*cx = c.svc.app.NewCtx()
	return c.run(sess, *cx)
}

// ended is the end of the connection's copy (see [owner]).
func (c *conn[C]) ended(err error) { c.finish(err) }

// finish ends the connection: err is what ended it (nil: both ends carried). It
// closes both sockets, runs Logging and releases the connection's slot.
func (c *conn[C]) finish(err error) {
	s, sess := c.svc, &c.sess
	defer s.done(c)
	if cut := c.cause(); cut != nil && !errors.Is(err, ErrPanic) {
		// The first cause: the other direction, or a phase, then failed on a closed socket.
		err = cut
	}
	if logworthy(err) {
		attrs := []any{"client", sess.clientString(), "err", err,
			"to_upstream", sess.BytesToUpstream(), "to_client", sess.BytesToClient()}
		if sess.peer != nil {
			attrs = append(attrs, "peer", sess.peer.Address)
		}
		s.log.Warn("l4: connection ended by an error", attrs...)
	}
	c.mu.Lock()
	c.finished = true
	client, up := c.client, c.up
	c.mu.Unlock()
	client.Close()
	if up != nil {
		up.Close()
	}
	sess.dur = max(time.Since(sess.start), 1)
	c.observeClose()
	c.logging(err)
}

// logging runs the Logging phase, recovering a panic in it.
func (c *conn[C]) logging(err error) {
	defer func() {
		if p := recover(); p != nil {
			c.svc.log.Error("l4: panic in Logging", "client", c.sess.clientString(), "panic", p, "stack", string(debug.Stack()))
		}
	}()
	c.svc.app.Logging(c.svc.ctx, &c.sess, c.cx, err)
}

// logworthy reports whether err deserves the service's log line: not the ends that
// are part of normal operation (a filter's refusal, a timeout, the service closing, a
// client that connected and closed without a handshake), nor a panic, logged already.
func logworthy(err error) bool {
	if err == nil {
		return false
	}
	for _, quiet := range []error{ErrRejected, ErrShutdown, ErrPanic, ErrIdleTimeout, ErrTotalTimeout} {
		if errors.Is(err, quiet) {
			return false
		}
	}
	return !((errors.Is(err, ErrHandshake) || errors.Is(err, ErrNotTLSHello)) && errors.Is(err, io.EOF))
}

// run takes the connection through its phases up to the copy, which it returns; or
// the error that ended the connection.
func (c *conn[C]) run(sess *Session, cx C) (*flow, error) {
	s := c.svc
	ctx := s.ctx
	if err := s.app.ConnectionFilter(ctx, sess, cx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	var total time.Time
	if s.opts.TotalTimeout > 0 {
		total = sess.start.Add(s.opts.TotalTimeout)
	}
	client := c.client
	var clientW net.Conn // where bytes to the client go, if not to client
	if c.ep.tls != nil {
		tc, err := c.handshake(sess, total)
		if err != nil {
			return nil, err
		}
		client = tc
	}
	if c.ep.passthrough {
		pc, err := c.peekHello(sess, total)
		if err != nil {
			return nil, err
		}
		client, clientW = pc, c.client
	}
	up, err := c.connect(ctx, sess, cx)
	if err != nil {
		return nil, err
	}
	if err := s.app.Connected(ctx, sess, cx, sess.peer, up); err != nil {
		return nil, fmt.Errorf("l4: Connected: %w", err)
	}
	f := &c.f
	f.cfg = &s.copyCfg
	f.total = unixNano(total)
	f.client, f.clientW, f.up = client, clientW, up
	return f, nil
}

// unixNano returns t in unix nanoseconds, or 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// handshake terminates the client's TLS. abort closes the raw connection, which ends a
// handshake in progress.
func (c *conn[C]) handshake(sess *Session, total time.Time) (*tls.Conn, error) {
	tc := tls.Server(c.client, c.ep.tls.ServerConfig())
	dl := time.Now().Add(c.svc.opts.TLSHandshakeTimeout)
	if !total.IsZero() && total.Before(dl) {
		dl = total
	}
	c.client.SetDeadline(dl)
	start := time.Now()
	if err := tc.Handshake(); err != nil {
		c.observeHandshake(start, nil, err)
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	c.client.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	c.observeHandshake(start, &cs, nil)
	sess.tls = &tlsInfo{state: &cs, serverName: cs.ServerName}
	if cs.NegotiatedProtocol != "" {
		sess.tls.alpn = []string{cs.NegotiatedProtocol}
	}
	return tc, nil
}

// peekHello reads the client's ClientHello without consuming it; the connection it
// returns yields the hello's bytes again before the rest.
func (c *conn[C]) peekHello(sess *Session, total time.Time) (net.Conn, error) {
	timeout := c.svc.opts.TLSHandshakeTimeout
	if !total.IsZero() {
		timeout = min(timeout, time.Until(total))
		if timeout <= 0 {
			return nil, ErrTotalTimeout
		}
	}
	hello, pc, err := tlspeek.Peek(c.client, 0, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTLSHello, err)
	}
	sess.tls = &tlsInfo{serverName: hello.ServerName, alpn: hello.ALPN}
	return pc, nil
}

// connect asks UpstreamPeer for a peer and connects to it, with the retries
// FailToConnect asks for.
func (c *conn[C]) connect(ctx context.Context, sess *Session, cx C) (net.Conn, error) {
	s := c.svc
	for {
		peer, err := s.app.UpstreamPeer(ctx, sess, cx)
		if err != nil {
			return nil, fmt.Errorf("l4: UpstreamPeer: %w", err)
		}
		if peer == nil {
			return nil, errors.New("l4: UpstreamPeer returned no peer")
		}
		if err := peer.Validate(); err != nil {
			return nil, err
		}
		sess.peer = peer
		sess.attempts++
		var t dialTimes
		var tp *dialTimes // (nil without observers: dial records nothing)
		var start time.Time
		if c.obs != nil {
			tp, start = &t, time.Now()
		}
		up, err := peer.dial(ctx, s.opts.ConnectTimeout, sess, tp)
		if tp != nil {
			c.obs.upstream(peer.Address, start, tp, err)
		}
		if err == nil {
			if !c.setUp(up) {
				return nil, c.cause()
			}
			return up, nil
		}
		if cut := c.cause(); cut != nil {
			return nil, cut
		}
		ce := &ConnectError{Peer: peer, Err: err}
		if r := s.app.FailToConnect(ctx, sess, cx, peer, ce); r != nil {
			ce = r
		}
		if !ce.Retry || sess.attempts > s.opts.MaxRetries {
			return nil, ce
		}
	}
}
