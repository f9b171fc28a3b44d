package proxy

import (
	"net"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/idle"
)

// idlePoller is the service's poller of idle HTTP/1.x client connections (see
// idle.Poller): it parks them between requests without a goroutine, and serves busy
// ones hot (see hot.go).
type idlePoller[C any] = idle.Poller[*conn[C]]

// newIdlePoller returns a poller for s, or nil where epoll is not usable.
func newIdlePoller[C any](s *Service[C]) *idlePoller[C] { return idle.New(idleOptions(s)) }

// idleOptions returns the options of s's idle poller.
func idleOptions[C any](s *Service[C]) idle.Options[*conn[C]] {
	return idle.Options[*conn[C]]{
		Dispatch:         s.dispatch,
		KeepaliveTimeout: durOr(s.opts.KeepaliveTimeout, 60*time.Second),
	}
}

// The connection's side of the idle poller (idle.Conn); parking itself is conn's (see
// parkIdle).

// IdleHandle returns the connection's part in the idle poller.
func (c *conn[C]) IdleHandle() *idle.Handle { return &c.poll }

// NetConn returns the client's socket.
func (c *conn[C]) NetConn() net.Conn { return c.nc }

// Unpark takes the parked connection for the poller's sweep (see unpark).
func (c *conn[C]) Unpark() bool { return c.unpark() }

// End closes the connection that the poller's sweep took (see end).
func (c *conn[C]) End() { c.end() }
