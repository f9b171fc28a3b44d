package l4

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/observe"
)

// Errors that end a UDP session, as [ProxyUDP.Logging] receives them. Compare with
// errors.Is.
var (
	// ErrUDPIdle ends a session that saw no datagram either way for the service's
	// IdleTimeout.
	ErrUDPIdle = errors.New("l4: udp session idle")
	// ErrUDPShutdown ends every session still open when the service stops.
	ErrUDPShutdown = errors.New("l4: udp service shut down")
	// ErrUDPPeer wraps the error UpstreamPeer returned, or the failure to open the
	// session's upstream socket; the session then carried no datagram.
	ErrUDPPeer = errors.New("l4: udp upstream peer")
	// ErrUDPUpstream wraps a read or write error on the session's upstream socket: most
	// often syscall.ECONNREFUSED, the ICMP port-unreachable of an upstream that went away.
	ErrUDPUpstream = errors.New("l4: udp upstream")
	// ErrUDPPanic wraps the value of a panic in a phase of the session.
	ErrUDPPanic = errors.New("l4: udp phase panicked")
)

// ProxyUDP is the callback interface of a UDP proxy service ([NewUDPService]). C is the
// type of the per-session context that NewCtx makes and every phase receives.
//
// A session is the exchange between one client address and one upstream, on one of
// the service's listening sockets: it starts with the first datagram from an address
// the service has no session for, and ends when it has been idle for the service's
// IdleTimeout, when its upstream socket fails, or when the service stops. The phases
// run in this order:
//
//	NewCtx ─► SessionFilter ─► UpstreamPeer ─► (datagrams both ways) ─► Logging
//
// Only NewCtx and UpstreamPeer must be written; the others have defaults in
// [UDPPhases], which the implementing type must embed. A ProxyUDP is shared by every
// session of a service, so its methods must be safe for concurrent use; per-session
// state belongs in C. A panic in a phase ends that session only (or drops that
// datagram, in NewCtx and SessionFilter): it is recovered and logged.
//
// Every phase receives the service's context, which ends when the service stops.
type ProxyUDP[C any] interface {
	// NewCtx returns the context of a new session. It runs first, once per session, on
	// the goroutine that reads the listening socket: it must not block.
	NewCtx() C

	// SessionFilter decides whether a datagram from client, an address with no
	// session, may start one. Returning an error drops the datagram and makes no
	// session (Logging does not run; the next datagram from client asks again). It
	// runs on the goroutine that reads the listening socket, so it must not block: an
	// allow list, a rate limit. Default: nil, every client may start a session.
	SessionFilter(ctx context.Context, client netip.AddrPort, c C) error

	// UpstreamPeer returns the upstream of a new session as "host:port" (a host name
	// is resolved here, with ctx). It runs once per session, on the session's own
	// goroutine, after SessionFilter; the client's datagrams that arrive meanwhile wait
	// (up to 8; later ones are dropped). An error ends the session before any datagram
	// was sent: Logging runs with an error wrapping [ErrUDPPeer].
	UpstreamPeer(ctx context.Context, s *UDPSession, c C) (string, error)

	// Logging runs once when a session ends, whatever happened, on the session's
	// goroutine; err says why it ended: [ErrUDPIdle], [ErrUDPShutdown], or an error
	// wrapping [ErrUDPPeer], [ErrUDPUpstream] or [ErrUDPPanic]. s's counters and
	// duration are final. Default: nothing.
	Logging(ctx context.Context, s *UDPSession, c C, err error)

	udpPhases()
}

// UDPPhases provides the default for every optional phase of [ProxyUDP]. Embed it in
// the type that implements ProxyUDP; its zero value is ready to use.
type UDPPhases[C any] struct{}

func (UDPPhases[C]) udpPhases() {}

// SessionFilter lets every client start a session.
func (UDPPhases[C]) SessionFilter(context.Context, netip.AddrPort, C) error { return nil }

// Logging does nothing.
func (UDPPhases[C]) Logging(context.Context, *UDPSession, C, error) {}

// UDPOptions configures a [UDPService]. The zero value (with at least one Listen
// address) is ready to use.
type UDPOptions struct {
	// Listen lists the UDP addresses to serve on ("127.0.0.1:53", "[::1]:5353",
	// ":0"). At least one is needed. A session is per listening socket: replies go back
	// from the socket the client wrote to.
	Listen []string
	// MaxSessions bounds the sessions open at once over all listening sockets; a
	// datagram from a new client past it is dropped (counted in
	// UDPStats.DroppedSessionLimit, logged at most once a second) while existing
	// sessions keep working. If zero, 10,000. Each session holds one socket (a file
	// descriptor), one goroutine and one buffer of MaxDatagram+1 bytes.
	MaxSessions int
	// IdleTimeout ends a session that saw no datagram either way for this long. If
	// zero, 60s.
	IdleTimeout time.Duration
	// MaxDatagram is the largest datagram payload forwarded either way, in bytes;
	// larger ones are dropped and counted in UDPStats.DroppedOversize. If zero, 4096;
	// at most 65535.
	MaxDatagram int
	// Logger receives the service's logs. If nil, slog.Default().
	Logger *slog.Logger
	// Observers see the sessions as connections (package observe): ConnOpen when a
	// session's first datagram came, UpstreamConn once its socket to the peer is
	// connected (or failed), and ConnClose when it ended, before Logging, with the
	// payload bytes relayed each way; observe.Conn's Proto is "UDP". A Prometheus
	// observer (observe/prometheus) counts them as open connections of the service.
	// Without observers nothing is spent on them. No entry may be nil.
	Observers []observe.ConnObserver
}

// UDPSession describes one session of a [UDPService] to the phases. Its methods are
// safe for concurrent use; its counters move while the session runs and are final in
// Logging.
type UDPSession struct {
	// immutable after creation
	client netip.AddrPort
	local  netip.AddrPort
	start  time.Time

	// set by the session's goroutine before any datagram is forwarded
	upstream atomic.Pointer[string]

	// counters: up is client to upstream, down is upstream to client
	datagramsUp, bytesUp     atomic.Int64
	datagramsDown, bytesDown atomic.Int64
	end                      atomic.Int64 // UnixNano of the end; 0 while it runs
}

// Client returns the client's address.
func (s *UDPSession) Client() netip.AddrPort { return s.client }

// Local returns the address of the listening socket the client writes to.
func (s *UDPSession) Local() netip.AddrPort { return s.local }

// Upstream returns the "host:port" UpstreamPeer returned, or "" before that.
func (s *UDPSession) Upstream() string {
	if p := s.upstream.Load(); p != nil {
		return *p
	}
	return ""
}

// Start returns when the session's first datagram arrived.
func (s *UDPSession) Start() time.Time { return s.start }

// Duration returns how long the session has run, or ran once it ended.
func (s *UDPSession) Duration() time.Duration {
	if e := s.end.Load(); e != 0 {
		return time.Unix(0, e).Sub(s.start)
	}
	return time.Since(s.start)
}

// UDPCounts counts the datagrams of a session, or of a whole service, each way.
type UDPCounts struct {
	// DatagramsUp and BytesUp count the client's datagrams sent upstream (payload
	// bytes).
	DatagramsUp, BytesUp int64
	// DatagramsDown and BytesDown count the upstream's datagrams sent to the client.
	DatagramsDown, BytesDown int64
}

// Counts returns the session's datagrams and bytes each way so far.
func (s *UDPSession) Counts() UDPCounts {
	return UDPCounts{
		DatagramsUp: s.datagramsUp.Load(), BytesUp: s.bytesUp.Load(),
		DatagramsDown: s.datagramsDown.Load(), BytesDown: s.bytesDown.Load(),
	}
}

// UDPStats are a [UDPService]'s counters since it was made, for tests and metrics.
type UDPStats struct {
	// Sessions is the number of sessions open now.
	Sessions int
	// SessionsTotal counts the sessions made (those SessionFilter let through).
	SessionsTotal int64
	// Received counts the datagrams read from the listening sockets, whatever became
	// of them.
	Received int64
	// Forwarded counts the datagrams each way and their payload bytes.
	Forwarded UDPCounts
	// DroppedSessionLimit counts datagrams from new clients dropped because
	// MaxSessions sessions were open.
	DroppedSessionLimit int64
	// DroppedFiltered counts datagrams dropped because SessionFilter (or NewCtx)
	// returned an error or panicked.
	DroppedFiltered int64
	// DroppedOversize counts datagrams over MaxDatagram, either way.
	DroppedOversize int64
	// DroppedPending counts client datagrams dropped while their session's
	// UpstreamPeer ran (past the 8 kept), or because the session was ending.
	DroppedPending int64
	// PeerErrors counts sessions ended by UpstreamPeer's error or the failure to open
	// their upstream socket.
	PeerErrors int64
	// UpstreamErrors counts sessions ended by an error on their upstream socket.
	UpstreamErrors int64
	// DroppedReplies counts upstreams' datagrams dropped because the listening
	// socket refused to send them to their client (a full send buffer, ENOBUFS); the
	// session goes on.
	DroppedReplies int64
}
