package l4

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A connection whose two directions are parked is detached from the runtime's poller:
// each socket's descriptor is duplicated, its net.TCPConn closed (which frees the
// runtime's descriptor of the socket, about 560 bytes outside the heap, and the
// connection's objects), and the service's poller watches the duplicates. When either
// becomes readable, the direction that resumes makes each a net.TCPConn again
// (net.FileConn) before it copies. Detaching costs five system calls per socket,
// attaching again about eighteen: the price of a burst after detachAfter of silence on
// both sides.

// rawSock is a socket descriptor the runtime's poller does not know: what the
// service's poller watches for a detached connection (8 bytes as a net.Conn). Only
// SyscallConn is used; its reads and writes fail, and Close leaves the descriptor to
// closeSockets.
type rawSock int

func (r rawSock) Read([]byte) (int, error)         { return 0, errors.ErrUnsupported }
func (r rawSock) Write([]byte) (int, error)        { return 0, errors.ErrUnsupported }
func (r rawSock) Close() error                     { return nil }
func (r rawSock) LocalAddr() net.Addr              { return nil }
func (r rawSock) RemoteAddr() net.Addr             { return nil }
func (r rawSock) SetDeadline(time.Time) error      { return errors.ErrUnsupported }
func (r rawSock) SetReadDeadline(time.Time) error  { return errors.ErrUnsupported }
func (r rawSock) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

// SyscallConn returns the descriptor, for the service's poller.
func (r rawSock) SyscallConn() (syscall.RawConn, error) { return rawCtl(r), nil }

// rawCtl is a descriptor as a syscall.RawConn: Control only.
type rawCtl int

func (r rawCtl) Control(f func(fd uintptr)) error  { f(uintptr(r)); return nil }
func (r rawCtl) Read(func(fd uintptr) bool) error  { return errors.ErrUnsupported }
func (r rawCtl) Write(func(fd uintptr) bool) error { return errors.ErrUnsupported }

// errAttach is the end of a connection whose detached sockets could not be made
// net.Conns again, or that was cut while detached.
var errAttach = fmt.Errorf("l4: attaching a detached connection's sockets: %w", net.ErrClosed)

// detachable reports whether the flow's sockets can be detached: plain TCP both.
func (f *flow) detachable() bool {
	_, c := f.client.(*net.TCPConn)
	_, u := f.up.(*net.TCPConn)
	return c && u && f.clientW == nil && f.own != nil
}

// detach detaches the flow's sockets if both halves are (still) parked.
func (f *flow) detach() {
	f.attachMu.Lock()
	defer f.attachMu.Unlock()
	up, down := &f.halves[0], &f.halves[1]
	f.mu.Lock()
	f.timers[2] = nil // fired: a flow that parks again makes another (none is held meanwhile)
	ok := !f.dead && !f.detached && !f.attachFailed && up.state == halfParked && down.state == halfParked
	f.mu.Unlock()
	if !ok {
		return
	}
	// (While attachMu is held no half copies: a half the poller resumes meanwhile
	// waits for it in attach.)
	f.cfg.poll.Unregister(up)
	f.cfg.poll.Unregister(down)
	client, peer := f.client, f.up
	cfd, err := dupFD(client)
	if err != nil {
		f.cfg.poll.Register(up)
		f.cfg.poll.Register(down)
		return
	}
	pfd, err := dupFD(peer)
	if err != nil {
		unix.Close(cfd)
		f.cfg.poll.Register(up)
		f.cfg.poll.Register(down)
		return
	}
	client.Close()
	peer.Close()
	rc, rp := rawSock(cfd), rawSock(pfd)
	f.client, f.up = rc, rp
	f.own.setConns(rc, rp) // (so that the closed connections can be collected)
	f.detached = true
	// Bytes that came since the sockets left the set are reported at once.
	if !f.cfg.poll.Register(up) || !f.cfg.poll.Register(down) {
		if f.reattach() != nil {
			f.attachFailed = true // (the halves then end with errAttach)
		}
	}
}

// attach makes the flow's sockets net.TCPConns again if they are detached; the
// halves call it before they copy. An error is the flow's end.
func (f *flow) attach() error {
	if !f.canDetach {
		return nil
	}
	f.attachMu.Lock()
	defer f.attachMu.Unlock()
	if f.attachFailed {
		return errAttach
	}
	if !f.detached {
		return nil
	}
	if err := f.reattach(); err != nil {
		f.attachFailed = true
		return fmt.Errorf("%w: %w", errAttach, err)
	}
	return nil
}

// reattach makes the detached descriptors net.TCPConns; attachMu is held.
func (f *flow) reattach() error {
	up, down := &f.halves[0], &f.halves[1]
	f.cfg.poll.Unregister(up)
	f.cfg.poll.Unregister(down)
	rc, rp := int(f.client.(rawSock)), int(f.up.(rawSock))
	f.detached = false
	client, err := fileConn(rc)
	if err != nil {
		unix.Close(rp)
		return err
	}
	peer, err := fileConn(rp)
	if err != nil {
		client.Close()
		return err
	}
	f.client, f.up = client, peer
	f.own.setConns(client, peer)
	// A half still parked watches its new socket.
	f.mu.Lock()
	parked := [2]bool{up.state == halfParked, down.state == halfParked}
	f.mu.Unlock()
	for i, h := range [2]*half{up, down} {
		if parked[i] && !f.cfg.poll.Register(h) {
			f.resume(h) // not watched: it waits on a goroutine of its own
		}
	}
	return nil
}

// resume starts a goroutine for h if it is parked.
func (f *flow) resume(h *half) {
	f.mu.Lock()
	parked := h.state == halfParked
	if parked {
		h.state = halfRunning
	}
	f.mu.Unlock()
	if parked {
		f.cfg.goRun(h.run)
	}
}

// closeSockets closes the flow's sockets for kill, once it is dead: the detached
// descriptors, or the sockets attach made (which the connection's abort, done before
// them, did not see). attachMu is taken.
func (f *flow) closeSockets() {
	f.mu.Lock()
	can := f.canDetach
	f.mu.Unlock()
	if !can {
		return
	}
	f.attachMu.Lock()
	defer f.attachMu.Unlock()
	if f.detached {
		up, down := &f.halves[0], &f.halves[1]
		f.cfg.poll.Forget(up)
		f.cfg.poll.Forget(down)
		unix.Close(int(f.client.(rawSock)))
		unix.Close(int(f.up.(rawSock)))
		f.detached = false
		f.attachFailed = true
		return
	}
	f.client.Close()
	f.up.Close()
}

// dupFD duplicates c's descriptor.
func dupFD(c net.Conn) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// fileConn makes the socket descriptor fd a net.Conn, and closes fd.
func fileConn(fd int) (net.Conn, error) {
	// Blocking, so that os.NewFile does not put it in the runtime's poller: FileConn
	// duplicates it and makes its copy (the same open socket) non-blocking again.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "socket")
	nc, err := net.FileConn(file)
	file.Close()
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetKeepAlive(false) // (FileConn turns keep-alive probes on)
	}
	return nc, nil
}
