//go:build linux && !386

package upwatch

import (
	"syscall"
	"unsafe"
)

// peekByte looks at the next byte of a socket without taking it and without blocking.
func peekByte(fd uintptr, b *[1]byte) (int, syscall.Errno) {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}
