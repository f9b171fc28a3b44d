//go:build !linux || netio_portable

package netio

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// Conn reads and writes a socket through its net.Conn methods, outside Linux (or with
// the netio_portable build tag, which tests this code on Linux). It keeps the contract
// of the Linux Conn: WriteBeforeRead, WriteTwo and AwaitingAnswer behave the same, at
// the cost of a read that may find nothing after a write. It is not safe for concurrent
// use by several readers or several writers (one of each is fine, as with net.Conn).
type Conn struct {
	nc       net.Conn
	pending  []byte      // to write at the start of the next Read
	awaiting atomic.Bool // a Read that wrote pending bytes waits for the first answer
	two      [2][]byte   // WriteTwo's pieces, kept here so that it does not allocate
	bufs     net.Buffers
}

// Wrap returns how to read and write nc: a *Conn when nc is a socket with a file
// descriptor, else nc itself.
func Wrap(nc net.Conn) io.ReadWriter {
	if _, ok := nc.(syscall.Conn); !ok {
		return nc
	}
	return &Conn{nc: nc}
}

// WriteBeforeRead arranges for p to be written by the next Read, before it reads. p must
// stay unchanged until that Read returns. WriteBeforeRead(nil) cancels.
func (c *Conn) WriteBeforeRead(p []byte) {
	if len(p) == 0 {
		p = nil
	}
	c.pending = p
	c.awaiting.Store(p != nil)
}

// AwaitingAnswer reports whether a Read started by WriteBeforeRead has not yet returned.
func (c *Conn) AwaitingAnswer() bool { return c.awaiting.Load() }

// SyscallConn returns the connection's raw access.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	return c.nc.(syscall.Conn).SyscallConn()
}

// Read writes the bytes WriteBeforeRead left, if any, then reads into p once.
func (c *Conn) Read(p []byte) (int, error) {
	defer c.awaiting.Store(false)
	if p0 := c.pending; p0 != nil {
		c.pending = nil
		if _, err := c.nc.Write(p0); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	return c.nc.Read(p)
}

// Write writes all of p.
func (c *Conn) Write(p []byte) (int, error) { return c.nc.Write(p) }

// WriteTwo writes all of a, then all of b, with one writev(2) where the system has it.
// It returns how many bytes of the two were written.
func (c *Conn) WriteTwo(a, b []byte) (int, error) {
	c.two = [2][]byte{a, b}
	c.bufs = c.two[:]
	n, err := c.bufs.WriteTo(c.nc)
	c.two, c.bufs = [2][]byte{}, nil
	return int(n), err
}

// ReadBuffer reads once as Read does, into a buffer it takes from bufs, which it
// returns with the n bytes read at its start; the caller owns the buffer. (Unlike the
// Linux one, it takes the buffer before it waits.)
func (c *Conn) ReadBuffer(bufs BufferPool) (buf []byte, n int, err error) {
	buf = bufs.Get()
	n, err = c.Read(buf)
	return buf, n, err
}
