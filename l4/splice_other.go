//go:build !linux

package l4

import "net"

// spliceable reports false: splice(2) is Linux's, and elsewhere (*net.TCPConn).ReadFrom
// would fall back to a copy with a fresh buffer per call. The portable copy reuses a
// pooled one.
func spliceable(dst, src net.Conn) bool { return false }
