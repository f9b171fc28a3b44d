package upgrade

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// listening reports whether the socket fd accepts connections.
func listening(fd int) bool {
	v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// checkPeer refuses a peer that runs as another user than this process: only the same
// user (or root) may hand over or take this process's sockets.
func checkPeer(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if uid := os.Geteuid(); int(cred.Uid) != uid && cred.Uid != 0 {
		return fmt.Errorf("peer process %d runs as uid %d, this process as uid %d", cred.Pid, cred.Uid, uid)
	}
	return nil
}
