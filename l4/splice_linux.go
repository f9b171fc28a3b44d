package l4

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// spliceable reports whether copying src to dst goes through splice(2): the runtime
// splices in (*net.TCPConn).ReadFrom when the source is a TCP or Unix stream socket.
// A TLS side cannot: its bytes are encrypted in user space.
func spliceable(dst, src net.Conn) bool {
	if _, ok := dst.(*net.TCPConn); !ok {
		return false
	}
	switch src.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// spliceChunker returns the copy step of a direction that splices: it waits, holding
// nothing, until src has bytes queued (or is at its end), then splices exactly those
// (at most spliceChunk) to dst. The runtime's splice holds a pipe, two file
// descriptors, for the whole of a call, waits included; a call that only moves bytes
// already queued returns the pipe to the runtime's pool at once, so an idle connection
// holds no pipe, and every burst is counted as it passes.
func spliceChunker(dst, src net.Conn) (func() (int64, bool, error), error) {
	rf := dst.(io.ReaderFrom)
	sc, err := src.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: src}
	var queued int
	var qerr error
	probe := func(fd uintptr) bool {
		queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if qerr != nil || queued > 0 {
			return true
		}
		// Nothing queued: the end of the stream, a pending error, or nothing yet.
		var b [1]byte
		var m int
		m, _, qerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if m > 0 { // bytes came after the ioctl
			queued = m
		}
		return !errors.Is(qerr, unix.EAGAIN)
	}
	return func() (int64, bool, error) {
		if err := sc.Read(probe); err != nil {
			return 0, false, err // a deadline, or a closed socket
		}
		switch {
		case queued > 0:
		case qerr == nil:
			return 0, true, nil // the end of the stream
		default:
			return 0, false, os.NewSyscallError("recvfrom", qerr)
		}
		lr.N = int64(min(queued, spliceChunk))
		n, err := rf.ReadFrom(lr)
		return n, false, err
	}, nil
}

// readable reports whether c has bytes queued, is at its end or has an error pending,
// without waiting; or whether that cannot be told (then the caller copies, and finds
// out).
func readable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ready := true
	if err := rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		ready = !errors.Is(err, unix.EAGAIN)
	}); err != nil {
		return true
	}
	return ready
}
