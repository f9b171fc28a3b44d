//go:build linux

package proxy

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// epollET is EPOLLET as the unsigned event mask.
const epollET = 1 << 31

// idlePoller waits for the next request of idle keep-alive HTTP/1.x client connections
// without a goroutine or a read per connection. Each such connection is registered once
// in an epoll set of the service's, edge-triggered for input; an idle connection is
// "parked" (see conn.parkIdle) and has no goroutine at all; when its client sends the
// next request, the poller hands the connection to a worker, which reads the request
// with a single read that finds it there. Without the poller, the connection's
// goroutine would read as soon as the last response was out, find nothing (EAGAIN), and
// wait in the runtime's poller, for one wasted syscall and two goroutine switches per
// request.
//
// The set's own descriptor is registered with the runtime's poller, so the loop waits
// there like any socket read and takes the events of many connections per wake-up.
type idlePoller[C any] struct {
	svc    *Service[C]
	epfd   int
	file   *os.File // epfd, for the runtime's poller
	rc     syscall.RawConn
	mu     sync.Mutex
	conns  map[int32]parkedConn[C]
	nextID int32
	events []syscall.EpollEvent
	n      int
	waitFn func(uintptr) bool
	done   chan struct{}
	// ticks counts the sweeper's ticks: the clock of parked connections, read without
	// a system call.
	ticks atomic.Int64

	// Connections served hot (see hot.go), and the clock that ends their waits.
	hotMu    sync.Mutex
	hot      map[*conn[C]]struct{}
	hotMax   int           // maxHot (tests lower it)
	hotGap   time.Duration // hotGap (tests widen it; see hotRoom)
	hotTicks atomic.Int64
	hotWake  chan struct{} // the hot clock sleeps while no connection is hot
	// hotBase is a time read by the hot clock, at most a tick old while a connection
	// is hot: the wall clock of a hot request's start is taken from it (see hotTime).
	hotBase atomic.Pointer[time.Time]

	// manualClocks keeps run from starting the hot clock and the sweep: a test drives
	// them, tick by tick, with tickHot and tickSweep. Set before run.
	manualClocks bool
}

type parkedConn[C any] struct {
	id int32
	c  *conn[C]
}

// newIdlePoller returns a poller for s, or nil where epoll is not usable.
func newIdlePoller[C any](s *Service[C]) *idlePoller[C] {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "idle-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	p := &idlePoller[C]{svc: s, epfd: epfd, file: f, rc: rc, conns: map[int32]parkedConn[C]{},
		events: make([]syscall.EpollEvent, 128), done: make(chan struct{}),
		hot: map[*conn[C]]struct{}{}, hotMax: maxHot, hotGap: hotGap, hotWake: make(chan struct{}, 1)}
	p.waitFn = p.wait
	p.hotTicks.Store(1) // a hot wait's start is never 0
	p.setHotBase()
	return p
}

// unregister removes c's socket from the set, for serving it hot; it reports whether c
// was in the set and is no longer.
func (p *idlePoller[C]) unregister(c *conn[C]) bool {
	if p == nil || c.pollFD == 0 {
		return false
	}
	removed := false
	p.control(c, func(fd int) {
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil) != nil {
			return
		}
		if cur, ok := p.conns[c.pollFD]; ok && cur.c == c {
			delete(p.conns, c.pollFD)
		}
		c.pollFD = 0
		removed = true
	})
	return removed
}

// control runs f with c's socket descriptor, which stays open meanwhile, and p.mu held;
// it does nothing for a connection without one.
func (p *idlePoller[C]) control(c *conn[C], f func(fd int)) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		f(int(fd))
	})
}

// hotRoom reports whether one more connection, whose request came gap after the end of
// its last response, may be served hot: gap is under hotGap, and fewer than hotMax
// connections are hot.
func (p *idlePoller[C]) hotRoom(gap time.Duration) bool {
	if p == nil || gap >= p.hotGap {
		return false
	}
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	return len(p.hot) < p.hotMax
}

// hotNow returns the hot clock, for a hot wait's start.
func (p *idlePoller[C]) hotNow() int64 { return p.hotTicks.Load() }

// hotJoin starts c's hot wait, under the hot clock; it reports false, doing nothing,
// when hotMax connections are hot already (hotRoom said there was room, but another
// worker took it since).
func (p *idlePoller[C]) hotJoin(c *conn[C]) bool {
	p.hotMu.Lock()
	if len(p.hot) >= p.hotMax {
		p.hotMu.Unlock()
		return false
	}
	c.hotSince.Store(p.hotTicks.Load())
	p.hot[c] = struct{}{}
	first := len(p.hot) == 1
	p.hotMu.Unlock()
	if first {
		select {
		case p.hotWake <- struct{}{}:
		default:
		}
	}
	return true
}

// hotLeave ends c's hot wait; it reports whether the hot clock ended it (by moving the
// read deadline into the past, which the caller puts back).
func (p *idlePoller[C]) hotLeave(c *conn[C]) bool {
	p.hotMu.Lock() // (also waits for a kick in progress to be done)
	delete(p.hot, c)
	p.hotMu.Unlock()
	return c.hotSince.Swap(0) < 0
}

// hotClock ends hot waits that have lasted for hotGap; it sleeps while no connection
// is hot. (kickAll ends them all at once, for Shutdown.)
func (p *idlePoller[C]) hotClock(stop chan struct{}) {
	t := time.NewTicker(hotTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if idle := p.tickHot(); idle {
			t.Stop()
			select {
			case <-stop:
				return
			case <-p.hotWake:
			}
			p.setHotBase()
			t.Reset(hotTick)
		}
	}
}

// tickHot moves the hot clock on by one tick and ends the hot waits that began
// hotWait ticks ago or more; it reports whether no connection is hot.
func (p *idlePoller[C]) tickHot() (idle bool) {
	now := p.hotTicks.Add(1)
	p.setHotBase()
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	for c := range p.hot {
		p.kick(c, now-hotWait)
	}
	return len(p.hot) == 0
}

// setHotBase reads the clock for hotTime.
func (p *idlePoller[C]) setHotBase() {
	now := time.Now()
	p.hotBase.Store(&now)
}

// hotTime returns the time for a hot connection's request, with one read of the
// monotonic clock instead of the two of time.Now (which reads the wall clock too): the
// time elapsed since hotBase, added to it. Only a step of the wall clock (the system's
// time being set) since the hot clock last read it is missed: at most a tick ago while
// connections are hot, and until the clock's next tick for the first hot requests after
// none was.
func (p *idlePoller[C]) hotTime() time.Time {
	b := p.hotBase.Load()
	return b.Add(time.Since(*b))
}

// kick ends c's hot wait if it began at or before tick; p.hotMu is held.
func (p *idlePoller[C]) kick(c *conn[C], tick int64) {
	if v := c.hotSince.Load(); v > 0 && v <= tick && c.hotSince.CompareAndSwap(v, -1) {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// kickAll ends every hot wait now, for Shutdown.
func (p *idlePoller[C]) kickAll() {
	if p == nil {
		return
	}
	p.hotMu.Lock()
	for c := range p.hot {
		p.kick(c, p.hotTicks.Load())
	}
	p.hotMu.Unlock()
}

// register adds c's socket to the set, once; it reports whether c can be parked.
func (p *idlePoller[C]) register(c *conn[C]) bool {
	if p == nil {
		return false
	}
	if c.pollFD != 0 {
		return true
	}
	registered := false
	p.control(c, func(fd int) {
		p.nextID++
		if p.nextID <= 0 {
			p.nextID = 1
		}
		id := p.nextID
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd), Pad: id}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
			return
		}
		p.conns[int32(fd)] = parkedConn[C]{id: id, c: c}
		c.pollFD = int32(fd)
		registered = true
	})
	return registered
}

// forget removes c; call it before closing c's socket (closing drops it from the set).
func (p *idlePoller[C]) forget(c *conn[C]) {
	if p == nil || c.pollFD == 0 {
		return
	}
	p.mu.Lock()
	if cur, ok := p.conns[c.pollFD]; ok && cur.c == c {
		delete(p.conns, c.pollFD)
	}
	p.mu.Unlock()
}

// wait is called by the runtime's poller: it takes the ready events without waiting,
// and asks to wait if there are none.
func (p *idlePoller[C]) wait(uintptr) bool {
	for {
		n, err := syscall.EpollWait(p.epfd, p.events, 0)
		if err == syscall.EINTR {
			continue
		}
		p.n = n
		return n > 0 || err != nil
	}
}

// run hands connections to workers as their clients send, until the poller is closed;
// it also closes connections parked for longer than the keep-alive timeout.
func (p *idlePoller[C]) run() {
	stop := make(chan struct{})
	var clocks sync.WaitGroup
	defer func() {
		close(stop)
		clocks.Wait()
		close(p.done)
	}()
	if !p.manualClocks {
		clocks.Go(func() { p.sweep(stop) })
		clocks.Go(func() { p.hotClock(stop) })
	}
	for {
		p.n = 0
		if err := p.rc.Read(p.waitFn); err != nil {
			return // closed
		}
		// One clock read for the batch, as the requests' start (as nginx keeps the
		// time of its event loop).
		now := time.Now()
		p.mu.Lock()
		for _, ev := range p.events[:p.n] {
			cur, ok := p.conns[ev.Fd]
			if !ok || cur.id != ev.Pad {
				continue // a connection closed since, or its descriptor reused
			}
			if cur.c.wake() {
				cur.c.wokenAt = now
				p.svc.dispatch(cur.c)
			}
		}
		p.mu.Unlock()
	}
}

// sweep closes connections parked for longer than the keep-alive timeout.
func (p *idlePoller[C]) sweep(stop chan struct{}) {
	period, wait := p.sweepPeriod()
	t := time.NewTicker(period)
	defer t.Stop()
	var expired []*conn[C]
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			expired = p.tickSweep(wait, expired)
		}
	}
}

// sweepPeriod returns the sweep's period, and for how many of its ticks a connection
// stays parked: one parked at tick n is closed at the first tick past n+wait, never
// before the keep-alive timeout, at most two periods after it.
func (p *idlePoller[C]) sweepPeriod() (period time.Duration, wait int64) {
	keepalive := durOr(p.svc.opts.KeepaliveTimeout, 60*time.Second)
	period = min(max(keepalive/8, 10*time.Millisecond), time.Second)
	return period, int64((keepalive+period-1)/period) + 1
}

// tickSweep moves the sweep's clock on by one tick and closes the connections parked
// for more than wait ticks; expired is room for them, returned empty for the next tick.
func (p *idlePoller[C]) tickSweep(wait int64, expired []*conn[C]) []*conn[C] {
	now := p.ticks.Add(1)
	p.mu.Lock()
	for _, pc := range p.conns {
		if now-pc.c.parkedAt.Load() > wait && pc.c.unpark() {
			expired = append(expired, pc.c)
		}
	}
	p.mu.Unlock()
	for i, c := range expired {
		c.end()
		expired[i] = nil
	}
	return expired[:0]
}

// tick returns the sweeper's tick count, for parkedAt.
func (p *idlePoller[C]) tick() int64 {
	if p == nil {
		return 0
	}
	return p.ticks.Load()
}

// close stops the loop and releases the set; parked connections are the service's to
// end (see Service.Close).
func (p *idlePoller[C]) close() {
	if p == nil {
		return
	}
	p.file.Close()
	<-p.done
}
