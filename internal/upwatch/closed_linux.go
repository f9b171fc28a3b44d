//go:build linux

package upwatch

import (
	"syscall"
	"unsafe"
)

// CanPeek tells whether [Peeker.Peek] tells an idle socket from one with bytes waiting.
const CanPeek = true

// Poll events (poll(2)); POLLRDHUP is Linux's: the other side shut down its writing half.
const (
	pollERR   = 0x8
	pollHUP   = 0x10
	pollRDHUP = 0x2000
)

type pollFD struct {
	fd      int32
	events  int16
	revents int16
}

// ClientClosed reports whether the client of rc has closed its side of the connection
// (its FIN arrived, whether or not bytes it sent before are still unread) or the
// connection failed. It asks the kernel with a poll that does not wait, and reads
// nothing.
func ClientClosed(rc syscall.RawConn) bool {
	gone := false
	err := rc.Control(func(fd uintptr) {
		p := pollFD{fd: int32(fd), events: pollRDHUP}
		var ts syscall.Timespec // zero: do not wait
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		gone = errno == 0 && n == 1 && p.revents&(pollRDHUP|pollHUP|pollERR) != 0
	})
	return err == nil && gone
}
