//go:build linux && !netio_portable

package netio

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Conn reads and writes a socket through raw system calls. It is not safe for concurrent
// use by several readers or several writers (one of each is fine, as with net.Conn).
type Conn struct {
	nc net.Conn
	rc syscall.RawConn

	// state of the current Read and Write, kept here so the callbacks do not allocate
	rp      []byte
	rbufs   BufferPool // where a ReadBuffer takes its buffer, when bytes are there (nil: Read)
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wp      []byte
	wp2     []byte // a second piece, written after wp (WriteTwo)
	wn      int    // bytes of wp, then wp2, written
	werr    syscall.Errno
	writeFn func(fd uintptr) bool

	// bytes to write at the start of the next Read (see WriteBeforeRead)
	pending  []byte
	pendingN int
	blocked  bool        // the pending write would block: Read finishes it with Write
	awaiting atomic.Bool // a Read that wrote pending bytes waits for the first answer
}

// WriteBeforeRead arranges for p to be written by the next Read, once that Read is
// registered with the runtime poller, instead of now. A Read that follows a write
// otherwise first tries a read(2), which finds nothing when what it reads is the answer
// to p; this way it waits for the answer at once, saving that system call. p must stay
// unchanged until the next Read returns.
//
// The price is that readiness seen before that Read is not rechecked: if the peer had
// already closed the connection, with no other event to come, the Read would wait until
// its deadline. A caller that can learn of such closes otherwise (an epoll set watching
// for EPOLLRDHUP) checks [Conn.AwaitingAnswer] and interrupts the Read with a past read
// deadline.
// WriteBeforeRead(nil) cancels.
func (c *Conn) WriteBeforeRead(p []byte) {
	if len(p) == 0 {
		p = nil
	}
	c.pending, c.pendingN = p, 0
	c.awaiting.Store(p != nil)
}

// AwaitingAnswer reports whether a Read started by WriteBeforeRead has not yet returned.
func (c *Conn) AwaitingAnswer() bool { return c.awaiting.Load() }

// Wrap returns how to read and write nc: a *Conn when nc is a socket with a file
// descriptor, else nc itself.
func Wrap(nc net.Conn) io.ReadWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &Conn{nc: nc, rc: rc}
	c.readFn, c.writeFn = c.doRead, c.doWrite
	return c
}

// SyscallConn returns the connection's raw access, so that code that waits for
// readability itself (h1.Reader.FillIdle) can find it.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Read reads into p once, waiting for the socket to become readable if need be.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	c.rp = nil
	return c.readDone(p, err)
}

// ReadBuffer reads once as Read does, into a buffer it takes from bufs only when bytes
// are there to read, so that a read that waits (for a peer's answer, say) holds no
// buffer; a buffer taken for a read that then found nothing goes back to bufs. It
// returns the buffer with the n bytes read at its start, or nil (with n 0) when it took
// none; the caller owns the buffer.
func (c *Conn) ReadBuffer(bufs BufferPool) (buf []byte, n int, err error) {
	c.rp, c.rn, c.rerr, c.rbufs = nil, 0, 0, bufs
	err = c.rc.Read(c.readFn)
	buf, c.rp, c.rbufs = c.rp, nil, nil
	if c.blocked && buf == nil { // the rest of the pending write, then a plain Read
		buf = bufs.Get()
	}
	n, err = c.readDone(buf, err)
	return buf, n, err
}

// readDone ends a Read into p of the callbacks' outcome, err being the raw read's.
func (c *Conn) readDone(p []byte, err error) (int, error) {
	if c.pending != nil || c.blocked {
		return c.afterPending(p, err)
	}
	c.awaiting.Store(false)
	if err != nil {
		return 0, err
	}
	if c.rerr != 0 {
		return 0, opError("read", c.nc, c.rerr)
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	return c.rn, nil
}

// afterPending ends a Read whose pending write did not complete.
func (c *Conn) afterPending(p []byte, err error) (int, error) {
	if c.blocked { // the socket's send buffer filled: finish the write, then read
		rest := c.pending[c.pendingN:]
		c.pending, c.blocked = nil, false
		if _, err := c.Write(rest); err != nil {
			c.awaiting.Store(false)
			return 0, err
		}
		c.awaiting.Store(false)
		return c.Read(p)
	}
	c.pending = nil
	c.awaiting.Store(false)
	if c.werr != 0 {
		werr := c.werr
		c.werr = 0
		return 0, opError("write", c.nc, werr)
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

func (c *Conn) doRead(fd uintptr) bool {
	if c.pending != nil {
		for c.pendingN < len(c.pending) {
			rest := c.pending[c.pendingN:]
			n, errno := send(fd, rest)
			switch errno {
			case 0:
				c.pendingN += n
			case syscall.EINTR:
			case syscall.EAGAIN:
				c.blocked = true
				return true
			default:
				c.werr = errno
				return true
			}
		}
		c.pending = nil
		// The answer cannot be there yet: wait for the poller, which this Read joined
		// before the write, so bytes that arrive from now on wake it.
		return false
	}
	took := false
	if c.rp == nil && c.rbufs != nil {
		c.rp, took = c.rbufs.Get(), true
	}
	for {
		n, errno := recv(fd, c.rp)
		switch errno {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if took { // nothing there after all: wait without it
				c.rbufs.Put(c.rp)
				c.rp = nil
			}
			return false
		default:
			c.rerr = errno
			return true
		}
	}
}

// Write writes all of p, waiting for the socket to become writable if need be.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n := c.wn
	c.wp = nil
	if err != nil {
		return n, err
	}
	if c.werr != 0 {
		return n, opError("write", c.nc, c.werr)
	}
	return n, nil
}

// WriteTwo writes all of a, then all of b, with one system call when the socket takes
// them at once: b is sent from where it is rather than copied behind a. It returns how
// many bytes of the two were written.
func (c *Conn) WriteTwo(a, b []byte) (int, error) {
	if len(a) == 0 {
		return c.Write(b)
	}
	c.wp2 = b
	n, err := c.Write(a)
	c.wp2 = nil
	return n, err
}

func (c *Conn) doWrite(fd uintptr) bool {
	a, b := c.wp, c.wp2
	for {
		var n int
		var errno syscall.Errno
		switch {
		case c.wn < len(a) && len(b) > 0:
			n, errno = sendTwo(fd, a[c.wn:], b)
		case c.wn < len(a):
			n, errno = send(fd, a[c.wn:])
		case c.wn < len(a)+len(b):
			n, errno = send(fd, b[c.wn-len(a):])
		default:
			return true
		}
		switch errno {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = errno
			return true
		}
	}
}

func opError(op string, nc net.Conn, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(),
		Addr: nc.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
