//go:build linux

package netio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn reads and writes a socket through raw system calls. It is not safe for concurrent
// use by several readers or several writers (one of each is fine, as with net.Conn).
type Conn struct {
	nc net.Conn
	rc syscall.RawConn

	// state of the current Read and Write, kept here so the callbacks do not allocate
	rp      []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wp      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

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

func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		switch errno {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
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

func (c *Conn) doWrite(fd uintptr) bool {
	for c.wn < len(c.wp) {
		rest := c.wp[c.wn:]
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch errno {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = errno
			return true
		}
	}
	return true
}

func opError(op string, nc net.Conn, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(),
		Addr: nc.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
