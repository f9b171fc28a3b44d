//go:build linux

package upwatch

import (
	"sync"
	"sync/atomic"
	"syscall"
)

// Watcher learns that peers closed connections without a syscall per request: every
// connection is registered once in an epoll set of its own for EPOLLRDHUP (the peer's
// FIN) and errors, edge-triggered, so that it produces no event while it is in use. One
// goroutine (Run) waits on the set and tells each closed connection. (Go's own poller
// also watches the socket, for reads and writes; the two sets do not interfere.)
//
// A nil *Watcher watches nothing; its methods may be called. Add, Remove, Stop and
// Release are safe for concurrent use with each other and with Run.
type Watcher struct {
	epfd      int
	wake      [2]int // a pipe whose read end is in the set, to stop the loop
	mu        sync.Mutex
	conns     map[int32]watched
	nextID    int32
	closed    atomic.Bool
	released  atomic.Bool // the descriptors are closed: a second Release must not close numbers reused since
	peek      [1]byte
	fd        int32       // the descriptor of the connection being told, under mu
	drainedFn func() bool // w.drained, made once
}

// Conn is a connection a [Watcher] watches.
type Conn interface {
	// PeerClosed is called on the watcher's goroutine, once or more, when the peer
	// closed the connection or it failed. It must not block, nor call the Watcher's
	// methods. drained, which it may call meanwhile (not later), reports whether
	// nothing but the close is left to read on the socket.
	PeerClosed(drained func() bool)
}

// epollET is EPOLLET as the unsigned event mask.
const epollET = 1 << 31

type watched struct {
	id int32
	c  Conn
}

// New returns a Watcher, or nil where one is not available. Start its Run on a
// goroutine; Stop and Release end it.
func New() *Watcher {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	w := &Watcher{epfd: epfd, conns: map[int32]watched{}}
	w.drainedFn = w.drained
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

// Add registers c, whose socket rc is; it reports whether c is watched, and the
// descriptor to pass to Remove.
func (w *Watcher) Add(rc syscall.RawConn, c Conn) (fd int32, ok bool) {
	if w == nil || rc == nil {
		return 0, false
	}
	rc.Control(func(sfd uintptr) {
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
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLERR | syscall.EPOLLHUP | epollET, Fd: int32(sfd), Pad: id}
		if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(sfd), &ev) != nil {
			return
		}
		w.conns[int32(sfd)] = watched{id: id, c: c}
		fd, ok = int32(sfd), true
	})
	return fd, ok
}

// Remove forgets c, added with descriptor fd; call it before closing c's socket
// (closing also drops it from the epoll set).
func (w *Watcher) Remove(fd int32, c Conn) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if cur, ok := w.conns[fd]; ok && cur.c == c {
		delete(w.conns, fd)
	}
	w.mu.Unlock()
}

// Run tells connections as their peers close them, until Stop.
func (w *Watcher) Run() {
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
				w.fd = ev.Fd
				cur.c.PeerClosed(w.drainedFn)
			}
		}
		w.mu.Unlock()
	}
}

// drained reports whether nothing but the close is left to read on the socket of the
// connection being told.
func (w *Watcher) drained() bool {
	n, errno := peekByte(uintptr(w.fd), &w.peek)
	return n <= 0 && errno != syscall.EAGAIN
}

// Stop makes Run return; release the set with Release once it has.
func (w *Watcher) Stop() {
	if w == nil || w.closed.Swap(true) {
		return
	}
	syscall.Write(w.wake[1], []byte{1})
}

// Release closes the set; call it after Run has returned (or if it never ran). Calls
// after the first do nothing: the descriptor numbers may belong to others by then.
func (w *Watcher) Release() {
	if w == nil {
		return
	}
	w.closed.Store(true)
	if w.released.Swap(true) {
		return
	}
	w.closeFDs()
}

func (w *Watcher) closeFDs() {
	syscall.Close(w.epfd)
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
}
