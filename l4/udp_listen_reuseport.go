//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package l4

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpListenControl sets SO_REUSEPORT on a listening UDP socket, so that the new
// process of a binary upgrade can bind the same address while the old one serves.
func udpListenControl(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return fmt.Errorf("l4: udp socket control: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("l4: udp SO_REUSEPORT: %w", serr)
	}
	return nil
}
