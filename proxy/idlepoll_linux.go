//go:build linux

package proxy

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

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
		events: make([]syscall.EpollEvent, 128), done: make(chan struct{})}
	p.waitFn = p.wait
	return p
}

// register adds c's socket to the set, once; it reports whether c can be parked.
func (p *idlePoller[C]) register(c *conn[C]) bool {
	if p == nil {
		return false
	}
	if c.pollFD != 0 {
		return true
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	registered := false
	rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.nextID++
		if p.nextID <= 0 {
			p.nextID = 1
		}
		id := p.nextID
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd), Pad: id}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
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
	defer close(p.done)
	stopSweep := make(chan struct{})
	defer close(stopSweep)
	go p.sweep(stopSweep)
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
	keepalive := durOr(p.svc.opts.KeepaliveTimeout, 60*time.Second)
	period := min(max(keepalive/8, 10*time.Millisecond), time.Second)
	// A connection parked at tick n is closed at the first tick past n+wait: never
	// before the keep-alive timeout, at most two periods after it.
	wait := int64((keepalive+period-1)/period) + 1
	t := time.NewTicker(period)
	defer t.Stop()
	var expired []*conn[C]
	for {
		select {
		case <-stop:
			return
		case <-t.C:
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
			expired = expired[:0]
		}
	}
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
