//go:build linux && 386

package upwatch

import "syscall"

// peekByte looks at the next byte of a socket without taking it and without blocking.
// (32-bit x86 has no direct recvfrom(2) number in Go's syscall package: the call goes
// through socketcall(2).)
func peekByte(fd uintptr, b *[1]byte) (int, syscall.Errno) {
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err != nil {
		if errno, ok := err.(syscall.Errno); ok {
			return 0, errno
		}
		return 0, syscall.EIO
	}
	return n, 0
}
