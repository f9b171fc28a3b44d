//go:build linux && !386 && !netio_portable

package netio

import (
	"syscall"
	"unsafe"
)

// recv reads a socket with recvfrom(2) rather than read(2): the same result, without
// the file layer's checks and hooks that read(2) passes through first, which cost about
// 4% of a loopback read and write pair (bench/floorproxy's BenchmarkSocketCalls).
func recv(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}

// sendTwo writes a and then b to a socket with one sendmsg(2), as send does one slice.
func sendTwo(fd uintptr, a, b []byte) (int, syscall.Errno) {
	iov := [2]syscall.Iovec{{Base: &a[0]}, {Base: &b[0]}}
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	msg := syscall.Msghdr{Iov: &iov[0]}
	msg.Iovlen = 2 // (an untyped constant: the field's type differs between architectures)
	n, _, errno := syscall.RawSyscall(syscall.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), syscall.MSG_NOSIGNAL)
	return int(n), errno
}

// send writes a socket with sendto(2) rather than write(2), for the reason recv gives.
// MSG_NOSIGNAL reports a connection the peer reset as EPIPE without raising SIGPIPE.
func send(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), errno
}
