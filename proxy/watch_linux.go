//go:build linux

package proxy

import (
	"sync"
	"sync/atomic"
	"syscall"
)

// closeWatcher learns that peers closed pooled connections without a syscall per
// request: every upstream connection is registered once in an epoll set of its own for
// EPOLLRDHUP (the peer's FIN) and errors, edge-triggered, so that it produces no event
// while it is in use. One goroutine waits on the set and marks closed connections dead;
// taking a connection from the pool then only reads that mark. (Go's own poller also
// watches the socket, for reads and writes; the two sets do not interfere.)
type closeWatcher struct {
	epfd   int
	wake   [2]int // a pipe whose read end is in the set, to stop the loop
	mu     sync.Mutex
	conns  map[int32]watched
	nextID int32
	closed atomic.Bool
	peek   [1]byte
}

// epollET is EPOLLET as the unsigned event mask.
const epollET = 1 << 31

type watched struct {
	id int32
	c  *upConn
}

func newCloseWatcher() *closeWatcher {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	w := &closeWatcher{epfd: epfd, conns: map[int32]watched{}}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.wake[0]), Pad: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.closeFDs()
		return nil
	}
	return w
}

// add registers c; it reports whether c is watched.
func (w *closeWatcher) add(c *upConn) bool {
	if w == nil || c.rc == nil {
		return false
	}
	ok := false
	c.rc.Control(func(fd uintptr) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.closed.Load() {
			return
		}
		w.nextID++
		if w.nextID < 0 {
			w.nextID = 0
		}
		id := w.nextID
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLERR | syscall.EPOLLHUP | epollET, Fd: int32(fd), Pad: id}
		if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			return
		}
		w.conns[int32(fd)] = watched{id: id, c: c}
		c.watchFD = int32(fd)
		ok = true
	})
	return ok
}

// remove forgets c; call it before closing c's socket (closing also drops it from the
// epoll set).
func (w *closeWatcher) remove(c *upConn) {
	if w == nil || !c.watched {
		return
	}
	w.mu.Lock()
	if cur, ok := w.conns[c.watchFD]; ok && cur.c == c {
		delete(w.conns, c.watchFD)
	}
	w.mu.Unlock()
}

// run marks connections dead as their peers close them, until stop.
func (w *closeWatcher) run() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || w.closed.Load() {
			return
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Pad < 0 {
				continue
			}
			if cur, ok := w.conns[ev.Fd]; ok && cur.id == ev.Pad {
				c := cur.c
				c.dead.Store(true)
				// A request written by a Read that waits for its answer may have been
				// sent on a connection whose close that Read can no longer see (see
				// netio.Conn.WriteBeforeRead). If nothing but the close is left to
				// read, wake it.
				if c.rio != nil && c.rio.AwaitingAnswer() {
					if n, errno := peekByte(uintptr(ev.Fd), &w.peek); n <= 0 && errno != syscall.EAGAIN {
						c.nc.SetReadDeadline(aLongTimeAgo)
					}
				}
			}
		}
		w.mu.Unlock()
	}
}

// stop makes run return; release the set with release once it has.
func (w *closeWatcher) stop() {
	if w == nil || w.closed.Swap(true) {
		return
	}
	syscall.Write(w.wake[1], []byte{1})
}

// release closes the set; call it after run has returned (or if it never ran).
func (w *closeWatcher) release() {
	if w == nil {
		return
	}
	w.closed.Store(true)
	w.closeFDs()
}

func (w *closeWatcher) closeFDs() {
	syscall.Close(w.epfd)
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
}
