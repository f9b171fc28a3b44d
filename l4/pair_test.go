package l4

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

func tcpPair(tb testing.TB) (net.Conn, net.Conn) { return testnet.Pair(tb) }

// unixPair returns the two ends of a Unix stream socket pair.
func unixPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		cs[i] = c
	}
	return cs[0], cs[1], nil
}
