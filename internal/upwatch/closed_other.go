//go:build !linux

package upwatch

import "syscall"

// ClientClosed reports false: telling a closed client without reading from it needs
// Linux's POLLRDHUP, so elsewhere a client that went away is seen only when the
// response is written to it.
func ClientClosed(syscall.RawConn) bool { return false }
