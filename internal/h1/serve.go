package h1

import (
	"io"
	"syscall"
)

// ServeReadable serves a connection from inside one wait of the runtime's poller: it
// reads what the connection has into the Reader's buffer and calls serve, and waits
// again each time serve returns true, until serve returns false or the wait fails.
// serve runs with bytes buffered; it should take what it can from the buffer with
// [Reader.ReadRequestHeadBuffered] and must not make the Reader read (a read would wait
// for the wait this runs in). It may write to the connection.
//
// Staying in one wait is what makes this cheap: a new wait first clears the
// connection's readiness, so it must try a read that usually finds nothing, whereas
// bytes that arrive while serve runs are seen by this wait's poller without a read.
// It returns nil when serve returned false or the buffer is full (of a head too long for
// it: a usual read grows it), io.EOF if the client closed the connection, or the
// connection's error (a deadline stays a net.Error). The Reader must read a
// [syscall.Conn]; for other readers it returns [ErrWouldBlock] at once.
func (r *Reader) ServeReadable(serve func() bool) error {
	if !r.rawConn() {
		return ErrWouldBlock
	}
	if r.serveFn == nil {
		r.serveFn = r.serveRead
	}
	r.serve, r.serveErr, r.serveWaited = serve, nil, false
	err := r.rc.Read(r.serveFn)
	r.serve = nil
	if err != nil {
		return err
	}
	return r.serveErr
}

// serveRead is called by the runtime's poller: once at first, and again each time the
// socket becomes readable. It reads after every wait, and at first only if nothing is
// buffered, appending to what is.
func (r *Reader) serveRead(fd uintptr) bool {
	if r.serveWaited || r.r == r.w {
		r.serveWaited = false
		if r.buf == nil {
			r.buf, r.pooled = r.pool.Get(), true
			r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
		}
		if r.r == r.w {
			r.r, r.w, r.scan, r.lineStart = 0, 0, 0, 0
		} else if r.w == len(r.buf) && r.r > 0 {
			n := copy(r.buf, r.buf[r.r:r.w])
			r.scan, r.lineStart = max(r.scan-r.r, 0), max(r.lineStart-r.r, 0)
			r.r, r.w = 0, n
		}
		if r.w == len(r.buf) {
			return true // full: the caller reads on the usual way, which grows the buffer
		}
		for {
			n, errno := rawRead(fd, r.buf[r.w:])
			switch errno {
			case 0:
				if n == 0 {
					r.serveErr = io.EOF
					return true
				}
				r.w += n
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				r.serveWaited = true
				return false
			default:
				r.serveErr = errno
				return true
			}
			break
		}
	}
	if r.serve() {
		r.serveWaited = true
		return false
	}
	return true
}

// ReadRequestHeadBuffered is ReadRequestHead from the bytes already buffered only: if
// they do not hold a whole head, it returns ErrWouldBlock and keeps them for the next
// read.
func (r *Reader) ReadRequestHeadBuffered(h *RequestHead) error {
	r.noFill = true
	err := r.ReadRequestHead(h)
	r.noFill = false
	return err
}
