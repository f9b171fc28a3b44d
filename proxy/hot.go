package proxy

import (
	"time"

	"github.com/gotthard-proxy/gotthard/internal/h1"
)

// A busy keep-alive connection is served "hot": instead of parking between requests
// (see idle.Poller), it keeps the worker that served its last request, which
// waits for the next one in the runtime's poller, in the one wait that its requests are
// served from (h1.Reader.ServeReadable). Parking costs two poller calls per wake-up
// (the runtime's, then the service's set); a hot connection costs none of its own, and
// no hand-over between goroutines: its requests cost the four socket calls of the
// exchange and nothing else. A connection turns hot when its next request came within
// the hot gap (20ms) of the end of the last response, and goes back to parking when it
// has waited for about as long without one, so only connections that keep a worker
// busy hold one. The poller keeps the clock that ends hot waits, and bounds how many
// connections are hot at a time.

// What a hot connection's serving ended with.
const (
	hotEnded    = iota // the connection ended
	hotCold            // it went back to the poller's set, idle: park it
	hotBuffered        // it went back to the poller's set with input to serve now
)

// Why the serving inside the wait stopped (conn.hotExit).
const (
	exitNone    = iota
	exitOutside // a request that needs more reads than the buffered bytes: serve it outside
	exitClose   // the connection must end
	exitKicked  // the hot wait was over before this input came
)

// hotEligible reports whether the connection should be served hot: its request came
// within the hot gap of the end of the previous response, and the poller has room.
func (c *conn[C]) hotEligible(woken, lastEnd time.Time) bool {
	return !woken.IsZero() && !lastEnd.IsZero() && c.svc.idle.HotRoom(woken.Sub(lastEnd))
}

// serveHot serves the connection on w for as long as its client keeps sending within
// the hot gap of each response (see above). The connection is active and idle-parkable
// (it has served a request, nothing is buffered).
func (c *conn[C]) serveHot(w *worker[C]) int {
	s := c.svc
	p := s.idle
	if !p.Unregister(c) {
		return hotCold
	}
	if c.hotFn == nil {
		c.hotFn = c.hotServe
	}
	for {
		if !p.HotJoin(c) {
			break // no room: park
		}
		c.hotW, c.hotExit = w, exitNone
		c.state.Store(stateIdle)
		err := c.r.ServeReadable(c.hotFn)
		kicked := p.HotLeave(c)
		c.hotW = nil
		if kicked {
			// The hot clock moved the read deadline into the past to end the wait.
			c.nc.SetReadDeadline(c.dl.ReadDeadline())
		}
		switch {
		case c.hotExit == exitClose:
			return hotEnded
		case c.hotExit == exitOutside:
			// A request that may read more from the client (a body, an upgrade, a head
			// not all here yet) is served outside the wait, as any other (with the start
			// time hotServe took).
			c.work(w)
			if !c.keep {
				return hotEnded
			}
			continue // a new wait: its first call reads, so nothing is missed
		case kicked || c.hotExit == exitKicked:
		case err != nil:
			return hotEnded // the client closed the connection, or it failed
		}
		break // idle for the hot gap
	}
	// Back to parking, in the poller's set again.
	c.state.Store(stateIdle)
	if s.closing.Load() || !p.Register(c) {
		return hotEnded
	}
	if c.r.Buffered() > 0 {
		return hotBuffered
	}
	return hotCold
}

// hotServe serves the requests buffered on a hot connection, from inside its wait; it
// reports whether to wait for more.
func (c *conn[C]) hotServe() bool {
	s := c.svc
	if !c.poll.HotClaim() {
		c.hotExit = exitKicked
		return false
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		c.hotExit = exitClose // closed by Shutdown
		return false
	}
	c.wokenAt = s.idle.HotTime()
	c.dl.Read(c.wokenAt, durOr(s.opts.KeepaliveTimeout, 60*time.Second), time.Time{})
	w := c.hotW
	for {
		ex := c.getExchange(w)
		err := c.r.ReadRequestHeadBuffered(&ex.head)
		if err == h1.ErrWouldBlock {
			c.putExchange(ex, w)
			c.hotExit = exitOutside
			return false
		}
		if err == nil && !servableInWait(&ex.head) {
			c.pending = ex
			c.hotExit = exitOutside
			return false
		}
		keep := c.handleHead(ex, err)
		if !c.finishRequest(ex, w, keep) {
			c.hotExit = exitClose
			return false
		}
		if c.r.Buffered() == 0 {
			break
		}
		c.wokenAt = time.Time{}
	}
	c.state.Store(stateIdle)
	if s.closing.Load() {
		c.hotExit = exitClose
		return false
	}
	s.idle.HotRewait(&c.poll)
	return true
}

// servableInWait reports whether a request can be served from inside the connection's
// wait: one that reads nothing more from the client.
func servableInWait(h *h1.RequestHead) bool {
	return h.Body == h1.BodyNone && len(h.Upgrade) == 0 && !h.Expect100 && string(h.Method) != "CONNECT"
}
