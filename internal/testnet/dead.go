package testnet

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// DeadAddr returns a loopback TCP address ("127.0.0.1:port") where connections are
// refused, for the test's whole run: its port is bound by a socket that never listens,
// so no other listener (of this process or another) can take it meanwhile, as one could
// a port merely freed. The socket closes when the test ends.
func DeadAddr(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatalf("testnet: socket: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		tb.Fatalf("testnet: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		tb.Fatalf("testnet: getsockname: %v", err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
