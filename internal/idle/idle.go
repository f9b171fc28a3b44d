package idle

import (
	"net"
	"sync/atomic"
	"time"
)

// hotGap is how soon after a response the next request must come for its connection
// to be served hot, and how long a hot connection waits for one.
const hotGap = 20 * time.Millisecond

// hotTick is the period of the clock that ends hot waits.
const hotTick = 5 * time.Millisecond

// HotWait is how many ticks of the hot clock a hot connection waits for a request.
const HotWait = int64(hotGap / hotTick)

// maxHot bounds the connections served hot at a time, and so the workers (and their
// stacks) they hold; beyond it, busy connections park between requests too.
const maxHot = 1024

// Conn is a connection that a [Poller] parks or serves hot. Its methods are called
// from the poller's goroutines; each says under which lock.
type Conn interface {
	comparable
	// IdleHandle returns the connection's part in the poller: the same one each call.
	IdleHandle() *Handle
	// NetConn returns the connection's socket: its descriptor goes in the poller's
	// set, and the hot clock moves its read deadline.
	NetConn() net.Conn
	// Wake is called, with the poller's lock held, when the client sent something,
	// with the time the poller saw it (one clock read per batch of events). It reports
	// whether the connection was parked and is now the poller's to hand to
	// [Options.Dispatch]; otherwise it leaves a note for whoever parks it next.
	Wake(now time.Time) bool
	// Unpark takes a parked connection, to end it, with the poller's lock held; it
	// reports false if the connection was not parked.
	Unpark() bool
	// End closes the connection, which Unpark gave to the sweep; it is called without
	// the poller's lock.
	End()
}

// Handle is a connection's part in a [Poller]: the state the poller keeps of it. The
// zero value is ready; a connection holds one for its life and returns it from
// [Conn.IdleHandle].
type Handle struct {
	pollFD   int32        // its descriptor in the poller's set, or 0; under the poller's lock
	parkedAt atomic.Int64 // the sweep's tick when parked (see [Poller.Parked])
	hotSince atomic.Int64 // the hot clock when its wait began; 0 while it serves; -1 once ended
}

// HotClaim takes the connection from the hot clock, which ends waits that last too
// long, to serve input that came during its hot wait; it reports false if the clock
// got there first. [Poller.HotRewait] starts the wait again.
func (h *Handle) HotClaim() bool {
	v := h.hotSince.Load()
	return v > 0 && h.hotSince.CompareAndSwap(v, 0)
}

// HotWaiting reports whether the connection waits hot for a request now: neither
// serving one nor ended by the hot clock.
func (h *Handle) HotWaiting() bool { return h.hotSince.Load() > 0 }

// Options configure a [Poller].
type Options[T Conn] struct {
	// Dispatch serves a connection whose client sent something, on a goroutine of the
	// caller's. It is called with the poller's lock held, so it must not block.
	// Required.
	Dispatch func(T)
	// KeepaliveTimeout is how long a connection stays parked before the sweep closes
	// it. If zero, 60s.
	KeepaliveTimeout time.Duration
	// HotGap is how soon after a response the next request must come for its
	// connection to be served hot (see [Poller.HotRoom]). If zero, 20ms; if negative,
	// no connection is served hot.
	HotGap time.Duration
	// ManualClocks keeps [Poller.Run] from starting the hot clock and the sweep: a test
	// drives them, tick by tick, with [Poller.TickHot] and [Poller.TickSweep].
	ManualClocks bool
}
