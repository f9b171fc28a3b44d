//go:build linux

package proxy

import "syscall"

// isAlive reports whether an idle connection is still usable: not closed by the peer and
// with no unexpected bytes waiting (an idle HTTP/1.1 server sends nothing). It peeks
// without blocking.
func (c *upConn) isAlive() bool {
	if c.rc == nil {
		return true
	}
	c.alive = false
	if err := c.rc.Read(c.checkFn); err != nil {
		return false
	}
	return c.alive
}

func (c *upConn) check(fd uintptr) bool {
	_, errno := peekByte(fd, &c.peek)
	c.alive = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
	return true
}
