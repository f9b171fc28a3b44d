//go:build linux

package idle

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// epollET is EPOLLET as the unsigned event mask.
const epollET = 1 << 31

// Poller waits for the next request of idle keep-alive HTTP/1.x client connections
// without a goroutine or a read per connection. Each such connection is registered once
// in an epoll set of the poller's, edge-triggered for input; an idle connection is
// "parked" (by its owner, after [Poller.Parked]) and has no goroutine at all; when its
// client sends the next request, the poller hands the connection to a worker
// ([Options.Dispatch]), which reads the request with a single read that finds it there.
// Without the poller, the connection's goroutine would read as soon as the last
// response was out, find nothing (EAGAIN), and wait in the runtime's poller, for one
// wasted syscall and two goroutine switches per request.
//
// The set's own descriptor is registered with the runtime's poller, so the loop waits
// there like any socket read and takes the events of many connections per wake-up.
//
// A busy connection is served "hot" instead (see [Poller.HotJoin]): it keeps the worker
// that served its last request, which waits for the next one in the runtime's poller.
// Parking costs two poller calls per wake-up (the runtime's, then the set's); a hot
// connection costs none of its own, and no hand-over between goroutines. The poller's
// hot clock ends a hot wait that has lasted for about the hot gap, so only connections
// that keep a worker busy hold one.
//
// A Poller is safe for concurrent use. A nil *Poller registers nothing and has no
// room for hot connections.
type Poller[T Conn] struct {
	opts Options[T]
	epfd int
	file *os.File // epfd, for the runtime's poller
	rc   syscall.RawConn
	mu   sync.Mutex
	// conns holds the registered connections by descriptor: a slice, not a map, since
	// descriptors are small and dense (each slot costs 16 bytes, a map entry several
	// times that). An empty slot has id 0. Its length is bounded by the highest
	// descriptor registered, so by the process's file limit.
	conns  []parkedConn[T]
	nconns int // slots in use
	nextID int32
	events []syscall.EpollEvent
	n      int
	waitFn func(uintptr) bool
	done   chan struct{}
	// ticks counts the sweeper's ticks: the clock of parked connections, read without
	// a system call.
	ticks atomic.Int64

	// Connections served hot, and the clock that ends their waits.
	hotMu    sync.Mutex
	hot      map[T]struct{}
	hotMax   int           // maxHot (see SetMaxHot)
	hotGap   time.Duration // Options.HotGap or hotGap (see HotRoom)
	hotTicks atomic.Int64
	hotWake  chan struct{} // the hot clock sleeps while no connection is hot
	// hotBase is a time read by the hot clock, at most a tick old while a connection
	// is hot: the wall clock of a hot request's start is taken from it (see HotTime).
	hotBase atomic.Pointer[time.Time]
}

type parkedConn[T Conn] struct {
	id int32 // 0: an empty slot
	c  T
}

// lookup returns the connection registered with descriptor fd, if any; p.mu is held.
func (p *Poller[T]) lookup(fd int32) (parkedConn[T], bool) {
	if fd < 0 || int(fd) >= len(p.conns) || p.conns[fd].id == 0 {
		return parkedConn[T]{}, false
	}
	return p.conns[fd], true
}

// store registers c with descriptor fd; p.mu is held.
func (p *Poller[T]) store(fd int32, pc parkedConn[T]) {
	if int(fd) >= len(p.conns) {
		grown := make([]parkedConn[T], max(2*len(p.conns), int(fd)+1, 64))
		copy(grown, p.conns)
		p.conns = grown
	}
	if p.conns[fd].id == 0 {
		p.nconns++
	}
	p.conns[fd] = pc
}

// remove empties the slot of descriptor fd if c holds it; p.mu is held.
func (p *Poller[T]) remove(fd int32, c T) {
	if cur, ok := p.lookup(fd); ok && cur.c == c {
		p.conns[fd] = parkedConn[T]{}
		p.nconns--
	}
}

// New returns a poller, or nil where epoll is not usable. [Poller.Run] runs it.
func New[T Conn](o Options[T]) *Poller[T] {
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
	gap := o.HotGap
	switch {
	case gap == 0:
		gap = hotGap
	case gap < 0:
		gap = 0 // (no gap is under it)
	}
	p := &Poller[T]{opts: o, epfd: epfd, file: f, rc: rc,
		events: make([]syscall.EpollEvent, 128), done: make(chan struct{}),
		hot: map[T]struct{}{}, hotMax: maxHot, hotGap: gap, hotWake: make(chan struct{}, 1)}
	p.waitFn = p.wait
	p.hotTicks.Store(1) // a hot wait's start is never 0
	p.setHotBase()
	return p
}

// Unregister removes c's socket from the set, for serving it hot; it reports whether c
// was in the set and is no longer.
func (p *Poller[T]) Unregister(c T) bool {
	h := c.IdleHandle()
	if p == nil || h.pollFD == 0 {
		return false
	}
	removed := false
	p.control(c, func(fd int) {
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil) != nil {
			return
		}
		p.remove(h.pollFD, c)
		h.pollFD = 0
		removed = true
	})
	return removed
}

// control runs f with c's socket descriptor, which stays open meanwhile, and p.mu held;
// it does nothing for a connection without one.
func (p *Poller[T]) control(c T, f func(fd int)) {
	sc, ok := c.NetConn().(syscall.Conn)
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

// HotRoom reports whether one more connection, whose request came gap after the end of
// its last response, may be served hot: gap is under the hot gap, and fewer than the
// bound of connections are hot.
func (p *Poller[T]) HotRoom(gap time.Duration) bool {
	if p == nil || gap >= p.hotGap {
		return false
	}
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	return len(p.hot) < p.hotMax
}

// SetMaxHot sets the bound on connections served hot at a time (1024 unless set), for
// tests.
func (p *Poller[T]) SetMaxHot(n int) {
	p.hotMu.Lock()
	p.hotMax = n
	p.hotMu.Unlock()
}

// HotRewait starts h's hot wait again, under the hot clock, once the requests that
// [Handle.HotClaim] took it for are served.
func (p *Poller[T]) HotRewait(h *Handle) { h.hotSince.Store(p.hotTicks.Load()) }

// HotJoin starts c's hot wait, under the hot clock, once [Poller.Unregister] took it
// out of the set; it reports false, doing nothing, when the bound of connections are
// hot already (HotRoom said there was room, but another worker took it since).
func (p *Poller[T]) HotJoin(c T) bool {
	p.hotMu.Lock()
	if len(p.hot) >= p.hotMax {
		p.hotMu.Unlock()
		return false
	}
	c.IdleHandle().hotSince.Store(p.hotTicks.Load())
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

// HotLeave ends c's hot wait; it reports whether the hot clock ended it (by moving the
// read deadline into the past, which the caller puts back).
func (p *Poller[T]) HotLeave(c T) bool {
	p.hotMu.Lock() // (also waits for a kick in progress to be done)
	delete(p.hot, c)
	p.hotMu.Unlock()
	return c.IdleHandle().hotSince.Swap(0) < 0
}

// HotConns returns the connections served hot now, for tests.
func (p *Poller[T]) HotConns() []T {
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	cs := make([]T, 0, len(p.hot))
	for c := range p.hot {
		cs = append(cs, c)
	}
	return cs
}

// hotClock ends hot waits that have lasted for the hot gap; it sleeps while no
// connection is hot. (KickAll ends them all at once, for a shutdown.)
func (p *Poller[T]) hotClock(stop chan struct{}) {
	t := time.NewTicker(hotTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if idle := p.TickHot(); idle {
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

// TickHot moves the hot clock on by one tick and ends the hot waits that began
// [HotWait] ticks ago or more; it reports whether no connection is hot. The hot clock
// calls it every 5ms while a connection is hot; a test with
// [Options.ManualClocks] calls it instead.
func (p *Poller[T]) TickHot() (idle bool) {
	now := p.hotTicks.Add(1)
	p.setHotBase()
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	for c := range p.hot {
		p.kick(c, now-HotWait)
	}
	return len(p.hot) == 0
}

// setHotBase reads the clock for HotTime.
func (p *Poller[T]) setHotBase() {
	now := time.Now()
	p.hotBase.Store(&now)
}

// HotTime returns the time for a hot connection's request, with one read of the
// monotonic clock instead of the two of time.Now (which reads the wall clock too): the
// time elapsed since hotBase, added to it. Only a step of the wall clock (the system's
// time being set) since the hot clock last read it is missed: at most a tick ago while
// connections are hot, and until the clock's next tick for the first hot requests after
// none was.
func (p *Poller[T]) HotTime() time.Time {
	b := p.hotBase.Load()
	return b.Add(time.Since(*b))
}

// kick ends c's hot wait if it began at or before tick; p.hotMu is held.
func (p *Poller[T]) kick(c T, tick int64) {
	h := c.IdleHandle()
	if v := h.hotSince.Load(); v > 0 && v <= tick && h.hotSince.CompareAndSwap(v, -1) {
		c.NetConn().SetReadDeadline(time.Unix(1, 0)) // in the past: the wait returns
	}
}

// KickAll ends every hot wait now, for a shutdown.
func (p *Poller[T]) KickAll() {
	if p == nil {
		return
	}
	p.hotMu.Lock()
	for c := range p.hot {
		p.kick(c, p.hotTicks.Load())
	}
	p.hotMu.Unlock()
}

// Register adds c's socket to the set, once; it reports whether c can be parked.
func (p *Poller[T]) Register(c T) bool {
	if p == nil {
		return false
	}
	h := c.IdleHandle()
	if h.pollFD != 0 {
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
		p.store(int32(fd), parkedConn[T]{id: id, c: c})
		h.pollFD = int32(fd)
		registered = true
	})
	return registered
}

// Parked records the sweep's clock in h as its connection parks, for the sweep; the
// connection's owner calls it before parking it.
func (p *Poller[T]) Parked(h *Handle) {
	var now int64
	if p != nil {
		now = p.ticks.Load()
	}
	h.parkedAt.Store(now)
}

// Forget removes c; call it before closing c's socket (closing drops it from the set).
func (p *Poller[T]) Forget(c T) {
	h := c.IdleHandle()
	if p == nil || h.pollFD == 0 {
		return
	}
	p.mu.Lock()
	p.remove(h.pollFD, c)
	p.mu.Unlock()
}

// Conns returns the connections in the set now, for tests.
func (p *Poller[T]) Conns() []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := make([]T, 0, p.nconns)
	for _, pc := range p.conns {
		if pc.id != 0 {
			cs = append(cs, pc.c)
		}
	}
	return cs
}

// wait is called by the runtime's poller: it takes the ready events without waiting,
// and asks to wait if there are none.
func (p *Poller[T]) wait(uintptr) bool {
	for {
		n, err := syscall.EpollWait(p.epfd, p.events, 0)
		if err == syscall.EINTR {
			continue
		}
		p.n = n
		return n > 0 || err != nil
	}
}

// Run hands connections to [Options.Dispatch] as their clients send, until
// [Poller.Close]; it also runs the sweep, which closes connections parked for longer
// than the keep-alive timeout, and the hot clock (unless [Options.ManualClocks]).
func (p *Poller[T]) Run() {
	stop := make(chan struct{})
	var clocks sync.WaitGroup
	defer func() {
		close(stop)
		clocks.Wait()
		close(p.done)
	}()
	if !p.opts.ManualClocks {
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
			cur, ok := p.lookup(ev.Fd)
			if !ok || cur.id != ev.Pad {
				continue // a connection closed since, or its descriptor reused
			}
			if cur.c.Wake(now) {
				p.opts.Dispatch(cur.c)
			}
		}
		p.mu.Unlock()
	}
}

// sweep closes connections parked for longer than the keep-alive timeout.
func (p *Poller[T]) sweep(stop chan struct{}) {
	period, wait := p.SweepPeriod()
	t := time.NewTicker(period)
	defer t.Stop()
	var expired []T
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			expired = p.tickSweep(wait, expired)
		}
	}
}

// SweepPeriod returns the sweep's period, and for how many of its ticks a connection
// stays parked: one parked at tick n is closed at the first tick past n+wait, never
// before the keep-alive timeout, at most two periods after it.
func (p *Poller[T]) SweepPeriod() (period time.Duration, wait int64) {
	keepalive := p.opts.KeepaliveTimeout
	if keepalive == 0 {
		keepalive = 60 * time.Second
	}
	period = min(max(keepalive/8, 10*time.Millisecond), time.Second)
	return period, int64((keepalive+period-1)/period) + 1
}

// TickSweep moves the sweep's clock on by one tick and closes the connections parked
// for longer than the keep-alive timeout, as the sweep does every period; a test with
// [Options.ManualClocks] calls it instead.
func (p *Poller[T]) TickSweep() {
	_, wait := p.SweepPeriod()
	p.tickSweep(wait, nil)
}

// tickSweep moves the sweep's clock on by one tick and closes the connections parked
// for more than wait ticks; expired is room for them, returned empty for the next tick.
func (p *Poller[T]) tickSweep(wait int64, expired []T) []T {
	now := p.ticks.Add(1)
	p.mu.Lock()
	for _, pc := range p.conns {
		if pc.id != 0 && now-pc.c.IdleHandle().parkedAt.Load() > wait && pc.c.Unpark() {
			expired = append(expired, pc.c)
		}
	}
	p.mu.Unlock()
	var zero T
	for i, c := range expired {
		c.End()
		expired[i] = zero
	}
	return expired[:0]
}

// Close stops [Poller.Run] and waits for it, and releases the set; parked connections
// are the caller's to end.
func (p *Poller[T]) Close() {
	if p == nil {
		return
	}
	p.file.Close()
	<-p.done
}
