package server

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"

	"github.com/gotthard-proxy/gotthard/internal/sockfile"
)

// boundListener is a listener the Server created, with what it must undo on exit.
type boundListener struct {
	ln net.Listener
	ep Endpoint // what the service asked for; a graceful upgrade hands it over with ln
	// sock is the Unix socket file created by the default listen function, and info
	// identifies it, so that exit removes it only if it is still the same file (a newer
	// process may have replaced it).
	sock string
	info fs.FileInfo
}

// cleanup removes the socket file of b if the Server created it and nobody replaced it.
func (b *boundListener) cleanup() {
	if b.sock == "" {
		return
	}
	sockfile.RemoveIfSame(b.sock, b.info)
}

// checkEndpoint reports whether ep is one the default listen function supports.
func checkEndpoint(ep Endpoint) error {
	switch ep.Network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return fmt.Errorf("server: endpoint %s: unsupported network %q", ep, ep.Network)
	}
	if ep.Address == "" {
		return fmt.Errorf("server: endpoint %s: empty address", ep)
	}
	return nil
}

// listenDefault creates the listener for ep with net.Listen. For a Unix socket it first
// removes a stale socket file (a socket nobody accepts on) and refuses to touch a file that
// is not a socket or a socket that is in use. Accepted TCP connections keep the system's
// keep-alive setting (off on Linux), as nginx's and HAProxy's do: the services end idle
// and dead connections with their own timeouts, and setting keep-alive costs system calls
// on every connection.
func listenDefault(ep Endpoint) (*boundListener, error) {
	if ep.Network != "unix" {
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), ep.Network, ep.Address)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		return &boundListener{ln: ln}, nil
	}
	if err := sockfile.RemoveStale(ep.Address); err != nil {
		return nil, fmt.Errorf("server: listen unix: %w", err)
	}
	ln, err := net.Listen("unix", ep.Address)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	// The Server removes the file itself, and only if it is still ours: a graceful
	// upgrade hands the socket to a new process that goes on serving it.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	info, err := os.Lstat(ep.Address)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	return &boundListener{ln: ln, sock: ep.Address, info: info}, nil
}
