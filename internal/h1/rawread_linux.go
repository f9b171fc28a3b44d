//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// rawRead reads a non-blocking socket with a raw system call: it never blocks, so the
// runtime need not hand the goroutine's P to another thread meanwhile.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}
