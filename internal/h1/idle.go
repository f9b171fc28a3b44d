package h1

import (
	"io"
	"syscall"
)

// FillIdle waits until the connection has bytes to read and reads them into a buffer
// taken from the pool at that moment, so that a connection waiting for its next message
// holds no buffer. It is for a Reader with nothing buffered; with bytes buffered it
// returns nil at once. It returns io.EOF if the connection was closed, or the
// connection's error (a deadline stays a net.Error).
//
// The Reader must read an [syscall.Conn] (such as *net.TCPConn); for other readers
// FillIdle reads through a pooled buffer held while it waits.
func (r *Reader) FillIdle() error {
	if r.r < r.w {
		return nil
	}
	r.dropBuffer()
	if r.rc == nil {
		if r.rcChecked {
			return r.fillOnce()
		}
		r.rcChecked = true
		sc, ok := r.rd.(syscall.Conn)
		if !ok {
			return r.fillOnce()
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return r.fillOnce()
		}
		r.rc, r.idleFn = rc, r.idleRead
	}
	r.idleN, r.idleErr = 0, nil
	if err := r.rc.Read(r.idleFn); err != nil {
		r.dropBuffer()
		return err
	}
	if r.idleErr != nil {
		r.dropBuffer()
		return r.idleErr
	}
	if r.idleN == 0 {
		r.dropBuffer()
		return io.EOF
	}
	r.w = r.idleN
	return nil
}

// idleRead is called by the runtime poller: at once, and again each time the socket
// becomes readable. A buffer is taken only to read into, and given back when there was
// nothing to read.
func (r *Reader) idleRead(fd uintptr) bool {
	if r.buf == nil {
		r.buf, r.pooled = r.pool.Get(), true
		r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
	}
	for {
		n, errno := rawRead(fd, r.buf)
		switch errno {
		case 0:
			r.idleN = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.dropBuffer()
			return false
		default:
			r.idleErr = errno
			return true
		}
	}
}

// fillOnce reads once into a pooled buffer, for readers without a file descriptor.
func (r *Reader) fillOnce() error {
	err := r.fill(r.lim.MaxHeadBytes + 1)
	if err != nil {
		r.Release()
	}
	return err
}
