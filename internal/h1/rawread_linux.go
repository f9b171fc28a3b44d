//go:build linux && !386

package h1

import (
	"syscall"
	"unsafe"
)

// rawRead reads a non-blocking socket with a raw system call: it never blocks, so the
// runtime need not hand the goroutine's P to another thread meanwhile. It uses
// recvfrom(2), which skips the file layer that read(2) passes through first.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}
