package proxyproto

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// canPeek reports whether rc is a TCP socket, whose queue peek and peerClosed read.
func canPeek(rc syscall.RawConn) bool {
	ok := false
	rc.Control(func(fd uintptr) {
		t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
		ok = err == nil && t == unix.IPPROTO_TCP
	})
	return ok
}

// peek reads what is queued on the socket into b without taking it.
func peek(fd uintptr, b []byte) (int, error) {
	n, _, err := unix.Recvfrom(int(fd), b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// peerClosed reports whether the peer of the TCP socket sent its FIN.
func peerClosed(fd uintptr) bool {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_CLOSE, unix.BPF_TCP_LAST_ACK:
		return true
	}
	return false
}
