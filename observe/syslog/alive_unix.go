//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package syslog

import (
	"net"
	"syscall"
)

// What a peek at a stream socket found.
const (
	peekEmpty  = iota // nothing to read: the connection is open
	peekData          // bytes to read
	peekClosed        // the end of the stream, or an error
)

// peek looks at c's socket without reading from it or blocking.
func peek(c net.Conn, buf []byte) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekEmpty
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peekEmpty
	}
	res := peekEmpty
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil || n == 0:
			res = peekClosed
		default:
			res = peekData
		}
		return true
	})
	if err != nil {
		return peekClosed
	}
	return res
}
