package h1

import (
	"errors"
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
	if !r.rawConn() {
		return r.fillOnce()
	}
	r.idleN, r.idleErr = 0, nil
	if err := r.rc.Read(r.idleFn); err != nil {
		r.dropBuffer()
		return err
	}
	return r.idleDone()
}

// ErrWouldBlock is returned by [Reader.FillNow] when the connection has nothing to read.
var ErrWouldBlock = errors.New("h1: nothing to read yet")

// FillNow is FillIdle without the wait: it reads what the connection has, or returns
// ErrWouldBlock at once. It is for a caller that learned by other means that the
// connection is readable. A Reader that does not read a [syscall.Conn] returns
// ErrWouldBlock.
func (r *Reader) FillNow() error {
	if r.r < r.w {
		return nil
	}
	r.dropBuffer()
	if !r.rawConn() {
		return ErrWouldBlock
	}
	r.idleN, r.idleErr, r.blocked = 0, nil, false
	if err := r.rc.Read(r.nowFn); err != nil {
		r.dropBuffer()
		return err
	}
	if r.blocked {
		return ErrWouldBlock
	}
	return r.idleDone()
}

// nowRead reads once, without waiting.
func (r *Reader) nowRead(fd uintptr) bool {
	r.blocked = !r.idleRead(fd)
	return true
}

// rawConn reports whether the Reader reads a socket it can read with raw syscalls,
// setting that up the first time.
func (r *Reader) rawConn() bool {
	if r.rc == nil {
		if r.rcChecked {
			return false
		}
		r.rcChecked = true
		sc, ok := r.rd.(syscall.Conn)
		if !ok {
			return false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		r.rc, r.idleFn, r.nowFn = rc, r.idleRead, r.nowRead
	}
	return true
}

// idleDone ends FillIdle and FillNow after a read.
func (r *Reader) idleDone() error {
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
