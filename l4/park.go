package l4

import (
	"net"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/idle"
)

// A half's side of the service's poller (idle.Conn): a half parks when its source had
// no bytes for parkAfter, and the poller resumes it on a goroutine of its own when the
// source becomes readable.

// newPoller returns the poller that parks the halves of s's idle connections, or nil
// where there is none (not Linux, or epoll unusable): connections then keep their
// goroutines.
func newPoller(idleTimeout time.Duration) *idle.Poller[*half] {
	keep := idleTimeout
	if keep <= 0 {
		keep = time.Minute // (the sweep then ends nothing: see Unpark)
	}
	return idle.New(idle.Options[*half]{
		Dispatch:         func(h *half) { h.f.cfg.goRun(h.run) },
		KeepaliveTimeout: keep,
		HotGap:           -1,
	})
}

// park parks h, whose source had no bytes for parkAfter. It reports true when h is
// parked, and its goroutine must end; false when it must copy on: its source became
// readable meanwhile, the flow was killed, or the socket could not be registered (h
// then never parks again).
func (h *half) park() bool {
	f := h.f
	if !f.cfg.poll.Register(h) {
		h.parkable = false
		return false
	}
	for {
		f.cfg.poll.Parked(&h.poll)
		f.mu.Lock()
		if f.dead {
			f.mu.Unlock()
			return false
		}
		if !h.woke {
			h.state = halfParked
			h.quiet.Store(true) // a parked half counts nothing
			if f.canDetach && h.other().state == halfParked {
				// Both parked: detach the sockets if they stay so for detachAfter.
				if t := f.timers[2]; t != nil {
					t.Reset(detachAfter)
				} else {
					f.timers[2] = time.AfterFunc(detachAfter, f.detach)
				}
			}
			f.mu.Unlock()
			return true
		}
		// The poller saw the source readable since the last park: bytes that the copy
		// may have moved already (the set is edge-triggered, and reports each arrival),
		// or new ones. Look without waiting.
		h.woke = false
		f.mu.Unlock()
		if readable(h.src()) {
			return false
		}
	}
}

// IdleHandle returns the half's part in the poller.
func (h *half) IdleHandle() *idle.Handle { return &h.poll }

// NetConn returns the half's source: the socket the poller watches.
func (h *half) NetConn() net.Conn { return h.src() }

// Wake takes the parked half for the poller, which resumes it; a half that is
// running notes that its source became readable, for its next park.
func (h *half) Wake(time.Time) bool {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	switch h.state {
	case halfParked:
		h.state = halfRunning
		return true
	case halfRunning:
		h.woke = true
	}
	return false
}

// Unpark takes the parked half for the poller's sweep when its connection is idle:
// nothing counted either way for the idle timeout, and the other half parked or done
// (a running one meets the idle timeout at its own read deadline); or nothing counted
// for 2×idle, when the other half is blocked writing to a receiver that does not read.
func (h *half) Unpark() bool {
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.state != halfParked || f.dead || f.cfg.idle <= 0 {
		return false
	}
	since := time.Since(time.Unix(0, f.last.Load()))
	if since < f.cfg.idle || h.other().state == halfRunning && since < 2*f.cfg.idle {
		return false
	}
	f.dead = true
	h.state = halfDone
	return true
}

// End ends the connection whose half the sweep took.
func (h *half) End() {
	h.f.cut(ErrIdleTimeout)
	h.f.halfDone(h, ErrIdleTimeout)
}
