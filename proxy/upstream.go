package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
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
		if attempt > 0 && ctx.Err() != nil || ex.drained.Load() {
			// (Closed while the failure phases ran, or a gRPC call ended by
			// CloseStreams.)
			return shutdownError(nil)
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
		if err := c.validPeer(ex, peer); err != nil {
			// A mistake in the peer, the same on every attempt: say so, once.
			return &Error{Type: InternalError, Source: Internal, Cause: err}
		}
		peer = c.upstreamPeer(peer)
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
		c.observeAttemptStart(ex, peer)
		e := c.attempt(ctx, ex, cc, peer)
		c.observeAttemptEnd(ex, e)
		if e == nil {
			return nil
		}
		if ctx.Err() != nil || ex.drained.Load() {
			// The service closed and cut the attempt (see Service.Close), or ended the
			// gRPC call (see Service.CloseStreams): neither the peer's failure nor one
			// to retry.
			if errors.Is(e, ErrShutdown) {
				return e
			}
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
	if ex.obs != nil && peer.Protocol != ProtoHTTP1 {
		c.attemptClock(ex) // the attempt's start, for the observers (the HTTP/2 exchanges read no clock here)
	}
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
	now := c.attemptClock(ex)
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
func (c *conn[C]) hostPool(ex *exchange[C], peer *Peer) *hostPool {
	if ex.lastPeer && c.lastHost != nil && !c.lastHost.removed.Load() {
		return c.lastHost // (validPeer compared the keys)
	}
	k := peer.key()
	h := c.svc.pool.lookup(k)
	if h != nil {
		c.lastPeer, c.lastKey, c.lastHost = peer, k, h
	}
	return h
}

// validPeer runs peer.Validate, except for the peer an HTTP/1.x connection's last
// request used (see hostPool) when its pool key is the same: that peer passed then, and
// the key holds every field Validate checks. It sets ex.lastPeer, for hostPool.
// (Validate costs some 500 instructions, a tenth of the proxy's own work for a small
// request.)
func (c *conn[C]) validPeer(ex *exchange[C], peer *Peer) error {
	ex.lastPeer = ex.sess.transport() == &c.h1 && c.lastPeer == peer && c.lastKey == peer.key()
	if ex.lastPeer {
		return nil
	}
	return peer.Validate()
}

// connect takes a pooled connection to peer or opens one; now is the time.
func (c *conn[C]) connect(ctx contextT, ex *exchange[C], peer *Peer, now time.Time) (*upConn, bool, *Error) {
	sess := &ex.sess
	strict := !idempotent(sess.req.Method) || sess.reqBodyKind != h1.BodyNone && !sess.bodyBuffered
	var h *hostPool
	if d, ok := sess.transport().(*h1down); ok && d == &c.h1 {
		h = c.hostPool(ex, peer)
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
