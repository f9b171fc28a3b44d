// Package l4 proxies at layer 4: a TCP (or TLS) service that connects each client
// connection to a peer and copies bytes both ways, run by a server.Server like the
// HTTP proxy, with phases of the same shape.
//
// A user implements [ProxyTCP] (embedding [Phases] for the defaults), makes a
// [Service] with [NewService], adds endpoints and runs it:
//
//	type Ctx struct {
//		tried lb.Attempts[*l4.Peer] // the upstreams this connection tried
//		pick  lb.Pick[*l4.Peer]     // the current attempt
//	}
//
//	type App struct {
//		l4.Phases[*Ctx]
//		lb *lb.LoadBalancer[*l4.Peer]
//	}
//
//	func (a *App) NewCtx() *Ctx { return &Ctx{} }
//
//	func (a *App) UpstreamPeer(_ context.Context, s *l4.Session, c *Ctx) (*l4.Peer, error) {
//		p, err := a.lb.Select("", &c.tried)
//		if err != nil {
//			return nil, err
//		}
//		c.pick = p
//		return p.Value(), nil
//	}
//
//	func (a *App) FailToConnect(_ context.Context, _ *l4.Session, c *Ctx, _ *l4.Peer, err *l4.ConnectError) *l4.ConnectError {
//		c.pick.Done(lb.ConnectFailure) // counts towards ejection
//		err.Retry = c.tried.Len() < len(a.lb.Targets()) // nothing was sent: a retry is safe
//		return err
//	}
//
//	func (a *App) Connected(_ context.Context, _ *l4.Session, c *Ctx, _ *l4.Peer, _ net.Conn) error {
//		c.pick.Done(lb.Success)
//		return nil
//	}
//
//	svc, err := l4.NewService("redis", &App{lb: balancer}, l4.ServiceOptions{MaxConns: 10000})
//	svc.AddTCP("127.0.0.1:6380")
//	srv.Add(svc) // a server.Server
//
// examples/tcp-proxy is this, runnable.
//
// # Phases
//
// Each connection goes through the phases in this order:
//
//	NewCtx
//	ConnectionFilter           client and local address; an error closes the connection
//	(TLS handshake)            on endpoints added with AddTLS
//	(ClientHello peek)         on endpoints added with AddTLSPassthrough: SNI and ALPN
//	UpstreamPeer  ◄──────┐     where to connect
//	(connect)            │     dial, and the peer's TLS handshake if it has TLS
//	FailToConnect ───────┘     on failure; Retry asks for another attempt
//	Connected                  the upstream connection is up
//	(copy both ways)
//	Logging                    always, last: the error, bytes each way, duration
//
// # The copy
//
// Each direction runs on a goroutine while it has bytes to move (the connection's, and
// one more). On Linux, between two plain sockets where the destination is TCP, the copy
// is splice(2) through (*net.TCPConn).ReadFrom: the bytes go from socket to socket
// through a kernel pipe and never reach user space. The runtime holds a pipe (two file
// descriptors) for the whole of a ReadFrom call, waits included, so the direction first
// waits for bytes with no pipe (through the socket's syscall.RawConn: one recv(2) with
// MSG_PEEK|MSG_TRUNC counts what is queued without copying it) and then splices exactly
// the bytes queued (at most 1 MiB): an idle connection holds no pipe and no buffer. A
// TLS side (terminated or originated), a Unix-socket destination, or another platform
// use a loop over a 32 KiB buffer taken from a pool of the service's for the time of
// the copy.
//
// # Idle connections hold no goroutine
//
// Where both directions splice (plain TCP on both sides, on Linux), a direction
// that has waited 50ms without a byte parks: its source socket goes into an epoll set
// of the service's (one per Serve, edge-triggered, the same poller the HTTP proxy parks
// its idle keep-alive connections with, internal/idle) and its goroutine ends. When the
// socket becomes readable (bytes, its end, or an error) the poller starts a goroutine
// that resumes the copy where it was. A connection whose two directions are parked
// holds no goroutine and no buffer. Once both have been parked for 50ms it is also
// detached from the runtime's poller: each socket's descriptor is duplicated and its
// net.TCPConn closed (freeing the runtime's per-socket state), the service's poller
// watches the duplicates, and the direction that resumes makes them net.TCPConns again
// (net.FileConn) before it copies. What is left is one 512-byte allocation (the
// connection, its Session and the copy's state) and about 0.15 KiB more (its
// context, its slots in the poller's and the service's lists): about 0.65 KiB of live
// heap. A burst after a pause of 50ms or more costs one goroutine start; after 100ms
// of silence both ways, about 45 system calls to detach and attach again.
//
// A connection with TLS on a side never parks: a tls.Conn may hold decrypted bytes that
// the socket's readiness does not show. Neither does a passthrough connection (its
// client's first bytes are replayed from memory) nor one with a Unix socket on a side;
// these keep their two goroutines while idle, as every connection does on other
// platforms.
//
// When one side's reads end (it closed or half-closed its writing), the proxy half-closes
// the other side's writing (CloseWrite: a FIN, or a TLS close_notify) and the other
// direction goes on, parked or not. The connection ends when both directions are done,
// when one fails (a reset, say: that ends only this connection, with one log line at
// Warn), or when a timeout fires; both sockets are then closed and Logging runs, on the
// goroutine of the direction that ended last.
//
// # Timeouts
//
// IdleTimeout ends a connection on which no byte moved either way for that long. Bytes
// are counted as each read is written on (a splice(2) call moves only the bytes already
// queued, so it never waits holding them). A running direction waits for its reads
// with a deadline IdleTimeout ahead (50ms, where it may park instead); when it fires
// with nothing moved for IdleTimeout,
// the connection ends if the other direction found the same at its own last deadline
// (or is parked, or done). The poller's sweep (every IdleTimeout/8, at most every
// second) ends a connection whose directions are parked or done once nothing moved for
// IdleTimeout. So a connection ends between IdleTimeout and 2×IdleTimeout after its
// last byte. A direction blocked writing to a receiver that does not read is cut when
// nothing was counted for 2×IdleTimeout (by the sweep while the other direction is
// parked, by a timer once it is done). TotalTimeout ends a connection at a fixed time after its accept, whatever it
// is doing, parked or not (a timer: no goroutine).
//
// # Limits
//
// MaxConns counts connections from their accept to their end, parked ones included; at
// the limit the service stops accepting, so new clients wait in the listen backlog
// (their connect succeeds, and they are served when a connection ends) rather than
// being refused.
//
// # When not to use it
//
// For HTTP, use package proxy: it understands requests, pools upstream connections and
// retries safely. This package sees only bytes.
package l4
