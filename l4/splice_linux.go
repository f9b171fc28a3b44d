package l4

import "net"

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
