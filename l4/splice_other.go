//go:build !linux

package l4

import (
	"errors"
	"net"
)

// spliceable reports false: splice(2) is Linux's, and elsewhere (*net.TCPConn).ReadFrom
// would fall back to a copy with a fresh buffer per call. The portable copy reuses a
// pooled one.
func spliceable(dst, src net.Conn) bool { return false }

// spliceChunker is never called where spliceable is false.
func spliceChunker(dst, src net.Conn) (func() (int64, bool, error), error) {
	return nil, errors.ErrUnsupported
}

// readable reports true: nothing parks here (see spliceable).
func readable(net.Conn) bool { return true }
