package l4

import (
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
	sc, err := src.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	_, tcp := src.(*net.TCPConn)
	// One allocation holds the step's state (and two its funcs): a direction makes
	// one each time it starts or resumes.
	sp := &splicer{rf: dst.(io.ReaderFrom), sc: sc, lr: io.LimitedReader{R: src}, tcp: tcp}
	sp.probe = sp.peek
	return sp.chunk, nil
}

// splicer is the state of a splicing direction's copy step (see spliceChunker).
type splicer struct {
	rf     io.ReaderFrom
	sc     syscall.RawConn
	lr     io.LimitedReader
	tcp    bool
	queued int
	qerr   error
	probe  func(fd uintptr) bool // peek
}

// peek counts the bytes queued on fd; it reports false, to wait, when there are none.
func (sp *splicer) peek(fd uintptr) bool {
	sp.queued, sp.qerr = peekQueued(fd, sp.tcp)
	return sp.qerr != unix.EAGAIN
}

// chunk waits for bytes and splices those queued (see spliceChunker).
func (sp *splicer) chunk() (int64, bool, error) {
	if err := sp.sc.Read(sp.probe); err != nil {
		return 0, false, err // a deadline, or a closed socket
	}
	switch {
	case sp.qerr != nil:
		return 0, false, os.NewSyscallError("recvfrom", sp.qerr)
	case sp.queued == 0:
		return 0, true, nil // the end of the stream
	}
	sp.lr.N = int64(min(sp.queued, spliceChunk))
	n, err := sp.rf.ReadFrom(&sp.lr)
	return n, false, err
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
		_, tcp := c.(*net.TCPConn)
		_, err := peekQueued(fd, tcp)
		ready = err != unix.EAGAIN
	}); err != nil {
		return true
	}
	return ready
}

// peekQueued returns how many bytes are queued on the stream socket fd (at most
// spliceChunk), without taking them and without waiting. It returns 0 at the end of
// the stream, EAGAIN when nothing is there yet, or the socket's pending error.
//
// On a TCP socket it takes one system call: recv(2) with MSG_PEEK|MSG_TRUNC counts the
// bytes a read of that size would return, without copying them. A Unix socket copies
// even then, so there it asks FIONREAD, and when nothing is queued peeks at one byte
// to tell the end of the stream from nothing yet.
func peekQueued(fd uintptr, tcp bool) (int, error) {
	if !tcp {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil || n > 0 {
			return min(n, spliceChunk), err
		}
		var b [1]byte
		n, _, err = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return n, err
	}
	for {
		// No buffer: with MSG_TRUNC nothing is copied, and were anything ever copied,
		// the call would fail with EFAULT rather than write anywhere.
		n, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, 0, spliceChunk,
			unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
