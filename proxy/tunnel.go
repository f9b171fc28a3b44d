package proxy

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/ascii"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
)

// Tunnels: a WebSocket upgrade (RFC 6455 over HTTP/1.1: the peer answers 101) and, when
// ServiceOptions.AllowConnect is set, a CONNECT request (RFC 9110 §9.3.6) turn the
// client connection into a two-way byte stream to the peer after the phases have seen
// (and could refuse) the request. Both end when both directions have ended, or when no
// byte has moved either way for the tunnel idle timeout.

// upgradeProtocols are the protocols a client may switch to through the proxy. h2c is
// not among them: an Upgrade to h2c through a proxy is a known smuggling vector.
func upgradeAllowed(proto []byte) bool {
	return ascii.EqualFoldLower(proto, "websocket")
}

// switchedTo reports whether a 101's fields switch to proto (RFC 9110 §7.8: its Upgrade
// field names the protocol the connection turns into).
func switchedTo(fields []h1.Field, proto string) bool {
	return fieldListHas(fields, "upgrade", func(elem []byte) bool {
		name, _, _ := bytes.Cut(elem, []byte("/"))
		return ascii.EqualFoldLower(name, proto)
	})
}

// writeUpgradeFields adds the fields of a protocol switch to a message head.
func writeUpgradeFields(w *h1.Writer, proto string) {
	w.WriteString("Connection: Upgrade\r\nUpgrade: ")
	w.WriteString(proto)
	w.WriteString("\r\n")
}

// switchProtocols answers the client with the peer's 101 (after the response phases)
// and tunnels between them.
func (c *conn[C]) switchProtocols(ctx contextT, ex *exchange[C], cc C, uc *upConn) *Error {
	sess := &ex.sess
	if sess.wsKey != "" && ex.resp.Header.Get("Sec-WebSocket-Accept") != webSocketAccept(sess.wsKey) {
		return &Error{Type: InvalidHTTP, Source: Upstream, Cause: errBadAccept}
	}
	if done, e := c.answerSwitch(ctx, ex, cc); done || e != nil {
		return e
	}
	if d, ok := sess.transport().(*h2down); ok {
		return c.tunnelH2(sess, d.st, uc)
	}
	return c.tunnel(sess, uc)
}

// answerSwitch runs the response phases on a peer's acceptance of a protocol switch
// (ex.resp, status 101) and answers the client: 101 over HTTP/1.1, 200 on an HTTP/2
// stream (RFC 8441). done reports that a filter answered the client instead.
func (c *conn[C]) answerSwitch(ctx contextT, ex *exchange[C], cc C) (done bool, _ *Error) {
	sess, resp := &ex.sess, &ex.resp
	if err := c.svc.app.UpstreamResponseFilter(ctx, sess, cc, resp); err != nil {
		return false, asError(err, InternalError, Internal)
	}
	if done, e := c.responseHead(ctx, ex, cc, nil); done || e != nil {
		return done, e // done: a filter answered instead
	}
	if d, ok := sess.transport().(*h2down); ok {
		resp.Header.Del("Sec-WebSocket-Accept") // no such field in RFC 8441's handshake
		sess.respStarted = true
		sess.status = 200
		if err := d.st.WriteHeaders(200, d.toFields(&resp.Header, true), false); err != nil {
			return false, asError(err, WriteError, Downstream)
		}
		return false, nil
	}
	sess.respStarted = true
	sess.status = 101
	sess.closeAfter = true
	w := c.w
	w.WriteStatusLine(1, 101, resp.Reason)
	for _, f := range resp.Header.Fields() {
		if !isFramingField(f.Name) {
			w.WriteField(f.Name, f.Value)
		}
	}
	writeUpgradeFields(w, sess.upgrade)
	w.EndHead()
	if err := w.Flush(); err != nil {
		return false, asError(err, WriteError, Downstream)
	}
	return false, nil
}

// connectTunnel serves an allowed CONNECT: the connection to the peer is open, so the
// client is told so and the bytes flow.
func (c *conn[C]) connectTunnel(sess *Session, uc *upConn) *Error {
	if d, ok := sess.transport().(*h2down); ok {
		sess.respStarted = true
		sess.status = 200
		if err := d.st.WriteHeaders(200, nil, false); err != nil {
			return asError(err, WriteError, Downstream)
		}
		return c.tunnelH2(sess, d.st, uc)
	}
	sess.respStarted = true
	sess.status = 200
	sess.closeAfter = true
	c.w.WriteString("HTTP/1.1 200 Connection Established\r\n\r\n")
	if err := c.w.Flush(); err != nil {
		return asError(err, WriteError, Downstream)
	}
	return c.tunnel(sess, uc)
}

// tunnel copies bytes both ways between the client's connection and the peer's until
// both directions end, an error, or the idle timeout. Bytes already buffered on either
// side go first.
func (c *conn[C]) tunnel(sess *Session, uc *upConn) *Error {
	// Deadlines are set directly from here on: forget the tracked ones.
	c.dl.Forget()
	uc.dl.Forget()
	return c.tunnelWatched(sess, tunnelSide{r: c.r.Raw(), rd: c.nc, w: c.nc}, tunnelSide{r: uc.r.Raw(), rd: uc.nc, w: uc.nc}, func() {
		c.nc.Close()
		uc.nc.Close()
	})
}

// tunnelSide is one side of a tunnel: where its bytes come from (r, whose waits rd's
// read deadline bounds) and where bytes for it go (w).
type tunnelSide struct {
	r  io.Reader
	rd tunnelEnd
	w  tunnelEnd
}

// tunnelWatched copies bytes both ways between client and peer until both directions
// end, an error (then abort cuts both sides), or the idle timeout. Not every side has
// read deadlines (an HTTP/2 stream has none), so a watchdog enforces the idle timeout.
// The watchdog also drains the tunnel when Service.CloseStreams asks (see drain.go).
//
// Goroutines: the caller's copies from the peer to the client and owns the result; a
// second one copies from the client to the peer; the watchdog waits for the idle
// timeout or the drain. The tunnel returns only after both others ended. abort may run
// on any of them, more than once.
func (c *conn[C]) tunnelWatched(sess *Session, client, peer tunnelSide, abort func()) *Error {
	idle := durOr(c.svc.opts.TunnelIdleTimeout, 5*time.Minute)
	t := &tunnelState{idle: idle, drainCh: make(chan struct{})}
	if sess.upgrade != "" {
		t.down = &wsDir{}
		t.up = &wsDir{masked: true}
	}
	t.touch()
	// The watchdog ends an idle tunnel. It is waited for before the tunnel returns, so
	// that its abort never reaches a connection or stream already serving another
	// request.
	stop, watchdogDone := make(chan struct{}), make(chan struct{})
	var idled atomic.Bool
	go func() {
		defer close(watchdogDone)
		tm := time.NewTimer(idle)
		defer tm.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.drainCh:
				c.drainTunnel(t, client.w, peer.w, stop, abort)
				return
			case <-tm.C:
				left := time.Until(time.Unix(0, t.last.Load()).Add(idle))
				if left > 0 {
					tm.Reset(left)
					continue
				}
				idled.Store(true)
				abort()
				return
			}
		}
	}()
	c.drains.add(t, &c.svc.streamsClosing)
	defer func() {
		c.drains.remove(t)
		close(stop)
		<-watchdogDone
	}()

	up := c.svc.bufs.Get()
	down := c.svc.bufs.Get()
	defer c.svc.bufs.Put(up)
	defer c.svc.bufs.Put(down)
	var wg sync.WaitGroup
	var upErr error
	var upN int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		if upN, upErr = t.pipe(peer.w, client.r, client.rd, up, t.up); upErr != nil {
			abort()
		}
	}()
	n, downErr := t.pipe(client.w, peer.r, peer.rd, down, t.down)
	if downErr != nil {
		abort()
	}
	wg.Wait()
	sess.bytesSent += n
	sess.bytesReceived += upN
	switch {
	case t.drained.Load():
		// Ended by CloseStreams, whichever way its sides then went.
		return shutdownError(cmp.Or(downErr, upErr))
	case idled.Load() || errors.Is(downErr, errTunnelIdle) || errors.Is(upErr, errTunnelIdle):
		return nil // a quiet tunnel's normal end (see tunnel)
	case downErr != nil:
		return asError(downErr, ReadError, Upstream)
	case upErr != nil:
		var re *h2.ResetError
		if errors.As(upErr, &re) {
			return nil // the client ended the tunnel with a reset: its way to close
		}
		return asError(upErr, ReadError, Downstream)
	}
	return nil
}

// drainTunnel ends a tunnel for CloseStreams, on its watchdog's goroutine (see
// tunnelWatched): a CONNECT tunnel at once; a WebSocket after the closing handshake
// (see Service.CloseStreams), within wsCloseWait. toClient and toPeer are where each
// side's bytes go.
func (c *conn[C]) drainTunnel(t *tunnelState, toClient, toPeer tunnelEnd, stop <-chan struct{}, abort func()) {
	t.drained.Store(true)
	if t.down == nil {
		c.svc.log.Debug("CONNECT tunnel closed: the service is shutting down", "client", c.clientS)
		abort()
		return
	}
	t.draining.Store(true)
	// A write that blocks (a client that reads nothing, a stream out of flow-control
	// credit) must not hold the tunnel past the wait: the backstop cuts it, but never
	// once this function has returned, when the connection may serve on.
	var bmu sync.Mutex
	over := false
	backstop := time.AfterFunc(wsCloseWait, func() {
		bmu.Lock()
		defer bmu.Unlock()
		if !over {
			abort()
		}
	})
	defer func() {
		backstop.Stop()
		bmu.Lock()
		over = true
		bmu.Unlock()
	}()
	end := time.Now().Add(wsCloseWait)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		t.down.tryClose(toClient, wsCloseWait)
		t.up.tryClose(toPeer, wsCloseWait)
		if t.down.done.Load() && t.up.done.Load() || !time.Now().Before(end) {
			abort()
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// tunnelEnd is what a tunnel needs of either end.
type tunnelEnd interface {
	io.Writer
	io.Closer
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

type tunnelState struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the last byte either way

	// The drain (see drainTunnel). down and up are the directions of a WebSocket
	// (peer to client, client to peer); nil for a CONNECT tunnel.
	down, up  *wsDir
	drainCh   chan struct{} // closed by drainStream
	drainOnce sync.Once
	drained   atomic.Bool // the watchdog began the drain
	draining  atomic.Bool // the directions put the proxy's close frame in
}

// drainStream asks the tunnel's watchdog to drain it.
func (t *tunnelState) drainStream() { t.drainOnce.Do(func() { close(t.drainCh) }) }

func (t *tunnelState) touch() { t.last.Store(time.Now().UnixNano()) }

var errTunnelIdle = errors.New("proxy: tunnel idle timeout")

// pipe copies src to dst until src ends (then it half-closes dst) or fails. A read that
// times out ends the tunnel only if neither direction moved a byte for the idle timeout.
// dst and srcConn are connections, or the ends of an HTTP/2 stream (h2Stream).
// Over a WebSocket, ws follows the frames and drains the direction (see wsDir.relay).
func (t *tunnelState) pipe(dst tunnelEnd, src io.Reader, srcConn tunnelEnd, buf []byte, ws *wsDir) (int64, error) {
	var total int64
	for {
		dl := time.Unix(0, t.last.Load()).Add(t.idle)
		srcConn.SetReadDeadline(dl)
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			dst.SetWriteDeadline(time.Now().Add(t.idle))
			var werr error
			if ws == nil {
				_, werr = dst.Write(buf[:n])
			} else {
				ws.mu.Lock()
				werr = ws.relay(dst, buf[:n], t.draining.Load())
				ws.mu.Unlock()
			}
			if werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return total, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(dl) {
			// Not the deadline set here (a side without deadlines, or a deadline set
			// to cut the tunnel, as abortUpstream does): an end, not a pause.
			return total, err
		}
		if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, t.last.Load())) < t.idle {
			continue // the other direction is busy
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return total, errTunnelIdle
		}
		return total, err
	}
}

// upgradeField returns the request's Upgrade protocol to carry, or "".
func upgradeField(up []byte, a *arena.Arena) string {
	if len(up) == 0 || !upgradeAllowed(up) {
		return ""
	}
	return a.String(up)
}
