package upgrade

import (
	"fmt"
	"os"
	"syscall"
)

// checkSocket reports whether f is a listening stream socket of the family l.Network
// names. The descriptor comes from another process, so nothing about it is trusted.
func checkSocket(f *os.File, l Listener) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("descriptor for %s: %w", l, err)
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		cerr = checkFD(int(fd), l.Network)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("descriptor for %s: %w", l, err)
	}
	return nil
}

func checkFD(fd int, network string) error {
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		if err == syscall.ENOTSOCK {
			return fmt.Errorf("%w: not a socket", errProtocol)
		}
		return fmt.Errorf("%w: socket type: %w", errProtocol, err)
	}
	if typ != syscall.SOCK_STREAM {
		return fmt.Errorf("%w: not a stream socket (type %d)", errProtocol, typ)
	}
	if !listening(fd) {
		return fmt.Errorf("%w: socket is not listening", errProtocol)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("%w: socket address: %w", errProtocol, err)
	}
	ok := false
	switch sa.(type) {
	case *syscall.SockaddrInet4:
		ok = network == "tcp" || network == "tcp4"
	case *syscall.SockaddrInet6:
		ok = network == "tcp" || network == "tcp6"
	case *syscall.SockaddrUnix:
		ok = network == "unix"
	}
	if !ok {
		return fmt.Errorf("%w: socket family %T does not serve network %s", errProtocol, sa, network)
	}
	return nil
}
