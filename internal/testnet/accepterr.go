package testnet

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// AcceptErrors returns ln with its first Accept calls failing with the system errors
// errnos, in turn, as the kernel's accept4 reports them, before it accepts: for the
// errors a loaded machine gives (EMFILE, ENFILE, ENOBUFS, ENOMEM), which a test cannot
// cause on loopback without starving the whole process.
func AcceptErrors(ln net.Listener, errnos ...syscall.Errno) net.Listener {
	return &acceptErrors{Listener: ln, errnos: errnos}
}

type acceptErrors struct {
	net.Listener
	mu     sync.Mutex
	errnos []syscall.Errno
}

func (l *acceptErrors) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errnos) > 0 {
		e := l.errnos[0]
		l.errnos = l.errnos[1:]
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: os.NewSyscallError("accept4", e)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}
