//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package l4

import "syscall"

// udpListenControl does nothing where SO_REUSEPORT is not known: a binary upgrade
// then cannot bind a UDP address the old process still holds.
func udpListenControl(_, _ string, _ syscall.RawConn) error { return nil }
