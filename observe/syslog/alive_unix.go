//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package syslog

import (
	"net"
	"syscall"
)

// alive reports whether the receiver has not closed the stream connection c. Syslog
// receivers never send, so a peek that finds the end of the stream (or an error) means
// the connection is gone; one that would block means it is still there.
func alive(c net.Conn, buf []byte) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = true
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil || n == 0:
			ok = false
		}
		return true
	})
	return ok && err == nil
}
