package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/acceptretry"
	"github.com/gotthard-proxy/gotthard/observe"
)

// Defaults of [UDPOptions].
const (
	udpDefaultMaxSessions = 10000
	udpDefaultIdleTimeout = 60 * time.Second
	udpDefaultMaxDatagram = 4096
	udpMaxDatagramLimit   = 65535
	// udpMaxPending is how many client datagrams a session keeps while its
	// UpstreamPeer runs.
	udpMaxPending = 8
	// udpLimitLogEvery spaces the log lines about the session limit.
	udpLimitLogEvery = time.Second
)

// UDPService proxies UDP datagrams: each client address gets a session with a socket
// of its own connected to the upstream that [ProxyUDP.UpstreamPeer] names, and the
// upstream's datagrams on that socket go back to the client from the listening socket
// the client wrote to. Make one with [NewUDPService].
//
// The server's listeners are TCP and Unix sockets, so a UDPService is a
// server.BackgroundService: [UDPService.Run] binds its UDP sockets itself and serves
// until its context ends. Each listening socket has one goroutine that reads it and
// forwards datagrams; each session has one goroutine that reads its upstream socket.
// No goroutine is started per datagram, and a session costs no timer per datagram.
//
// The listening sockets are bound with SO_REUSEPORT where the system has it, so that
// the new process of a graceful binary upgrade can bind the same addresses while the
// old one still serves; the upgrade does not hand UDP sockets over. While both run,
// the kernel spreads clients over the two by a hash of their address; a client whose
// datagrams move to the new process starts a new session there. When the service stops
// (graceful or fast shutdown alike: a datagram exchange has nothing to drain), every
// session ends at once with [ErrUDPShutdown] and Logging runs for each before Run
// returns.
//
// A read of a listening socket that fails (out of kernel memory, ENOBUFS or ENOMEM, or
// any error but the socket's close) is retried as a failed accept of the TCP services
// is: after a wait of 5 ms, twice as long after each next failure, at most a second,
// back to 5 ms after a read that succeeds; stopping the service ends a wait at once.
// The failures are logged at Warn, bounded: a line when the wait grows longer than any
// logged before, so at most nine while the errors go on, and again once the socket
// has read well for a second after the last line (which an Info line, "udp read
// recovered", marks).
//
// A UDPService is safe for concurrent use; Run may be called once.
type UDPService[C any] struct {
	// immutable after NewUDPService
	name        string
	app         ProxyUDP[C]
	listen      []string
	maxSessions int64
	idle        time.Duration
	maxDatagram int
	logger      *slog.Logger
	observers   []observe.ConnObserver
	epoch       time.Time
	bufs        sync.Pool // *[]byte of maxDatagram+1
	ready       chan struct{}
	// readFrom reads a listening socket; nil means its ReadFromUDPAddrPort. Tests
	// set it before Run.
	readFrom func(c *net.UDPConn, b []byte) (int, netip.AddrPort, error)
	// writeTo sends a reply to a client on a listening socket; nil means its
	// WriteToUDPAddrPort. Tests set it before Run.
	writeTo func(c *net.UDPConn, b []byte, to netip.AddrPort) (int, error)

	started atomic.Bool
	addrs   atomic.Pointer[[]netip.AddrPort]

	// counters
	open                     atomic.Int64 // sessions open or being made
	sessionsTotal            atomic.Int64
	received                 atomic.Int64
	datagramsUp, bytesUp     atomic.Int64
	datagramsDown, bytesDown atomic.Int64
	droppedLimit             atomic.Int64
	droppedFiltered          atomic.Int64
	droppedOversize          atomic.Int64
	droppedPending           atomic.Int64
	peerErrors               atomic.Int64
	upstreamErrors           atomic.Int64
	droppedReplies           atomic.Int64
	lastLimitLog             atomic.Int64 // since epoch; -udpLimitLogEvery at first
}

// NewUDPService returns a UDP proxy service named name whose sessions app runs. It
// checks opts and returns an error naming the first bad field.
func NewUDPService[C any](name string, app ProxyUDP[C], opts UDPOptions) (*UDPService[C], error) {
	switch {
	case name == "":
		return nil, errors.New("l4: NewUDPService: empty name")
	case app == nil:
		return nil, errors.New("l4: NewUDPService: nil app")
	case len(opts.Listen) == 0:
		return nil, errors.New("l4: UDPOptions.Listen: no address")
	case opts.MaxSessions < 0:
		return nil, fmt.Errorf("l4: UDPOptions.MaxSessions: %d is negative", opts.MaxSessions)
	case opts.IdleTimeout < 0:
		return nil, fmt.Errorf("l4: UDPOptions.IdleTimeout: %v is negative", opts.IdleTimeout)
	case opts.MaxDatagram < 0 || opts.MaxDatagram > udpMaxDatagramLimit:
		return nil, fmt.Errorf("l4: UDPOptions.MaxDatagram: %d is not in [0, %d]", opts.MaxDatagram, udpMaxDatagramLimit)
	}
	for i, a := range opts.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("l4: UDPOptions.Listen[%d]: %w", i, err)
		}
	}
	for i, o := range opts.Observers {
		if o == nil {
			return nil, fmt.Errorf("l4: UDPOptions.Observers[%d] is nil", i)
		}
	}
	s := &UDPService[C]{
		name:        name,
		app:         app,
		listen:      append([]string(nil), opts.Listen...),
		maxSessions: int64(opts.MaxSessions),
		idle:        opts.IdleTimeout,
		maxDatagram: opts.MaxDatagram,
		logger:      opts.Logger,
		observers:   slices.Clone(opts.Observers),
		epoch:       time.Now(),
		ready:       make(chan struct{}),
	}
	if s.maxSessions == 0 {
		s.maxSessions = udpDefaultMaxSessions
	}
	if s.idle == 0 {
		s.idle = udpDefaultIdleTimeout
	}
	if s.maxDatagram == 0 {
		s.maxDatagram = udpDefaultMaxDatagram
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	size := s.maxDatagram + 1 // one more byte tells an oversize datagram
	s.bufs.New = func() any { b := make([]byte, size); return &b }
	s.lastLimitLog.Store(-int64(udpLimitLogEvery))
	return s, nil
}

// Name returns the service's name.
func (s *UDPService[C]) Name() string { return s.name }

// Ready returns a channel closed once Run has bound every listening socket.
func (s *UDPService[C]) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound addresses of the listening sockets, in the order of
// UDPOptions.Listen (with the ports chosen for ":0"), or nil before [UDPService.Ready].
func (s *UDPService[C]) Addrs() []netip.AddrPort {
	if p := s.addrs.Load(); p != nil {
		return append([]netip.AddrPort(nil), *p...)
	}
	return nil
}

// Sessions returns the number of sessions open now (counting those whose UpstreamPeer
// runs).
func (s *UDPService[C]) Sessions() int { return int(s.open.Load()) }

// Stats returns the service's counters.
func (s *UDPService[C]) Stats() UDPStats {
	return UDPStats{
		Sessions:      int(s.open.Load()),
		SessionsTotal: s.sessionsTotal.Load(),
		Received:      s.received.Load(),
		Forwarded: UDPCounts{
			DatagramsUp: s.datagramsUp.Load(), BytesUp: s.bytesUp.Load(),
			DatagramsDown: s.datagramsDown.Load(), BytesDown: s.bytesDown.Load(),
		},
		DroppedSessionLimit: s.droppedLimit.Load(),
		DroppedFiltered:     s.droppedFiltered.Load(),
		DroppedOversize:     s.droppedOversize.Load(),
		DroppedPending:      s.droppedPending.Load(),
		PeerErrors:          s.peerErrors.Load(),
		UpstreamErrors:      s.upstreamErrors.Load(),
		DroppedReplies:      s.droppedReplies.Load(),
	}
}

// recv reads a datagram from the listening socket c into b.
func (s *UDPService[C]) recv(c *net.UDPConn, b []byte) (int, netip.AddrPort, error) {
	if s.readFrom != nil {
		return s.readFrom(c, b)
	}
	return c.ReadFromUDPAddrPort(b)
}

// reply sends b to the client to on the listening socket c.
func (s *UDPService[C]) reply(c *net.UDPConn, b []byte, to netip.AddrPort) error {
	if s.writeTo != nil {
		_, err := s.writeTo(c, b, to)
		return err
	}
	_, err := c.WriteToUDPAddrPort(b, to)
	return err
}

// now is the monotonic time since the service was made.
func (s *UDPService[C]) now() time.Duration { return time.Since(s.epoch) }

// Run binds the listening sockets and serves until ctx ends; it then ends every
// session (Logging runs for each), waits for its goroutines and returns nil. It
// returns an error at once if a socket cannot be bound, or if Run was called before.
func (s *UDPService[C]) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("l4: udp service %s: Run called twice", s.name)
	}
	lc := net.ListenConfig{Control: udpListenControl}
	ls := make([]*udpListener[C], 0, len(s.listen))
	addrs := make([]netip.AddrPort, 0, len(s.listen))
	for _, a := range s.listen {
		pc, err := lc.ListenPacket(ctx, "udp", a)
		if err != nil {
			for _, l := range ls {
				l.conn.Close()
			}
			return fmt.Errorf("l4: udp service %s: %w", s.name, err)
		}
		conn := pc.(*net.UDPConn)
		local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		ls = append(ls, &udpListener[C]{svc: s, conn: conn, local: local, table: make(map[netip.AddrPort]*udpSession[C])})
		addrs = append(addrs, local)
	}
	s.addrs.Store(&addrs)
	close(s.ready)
	s.logger.Info("udp service listening", "service", s.name, "addrs", addrs)

	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { l.serve(ctx, &wg) })
	}
	<-ctx.Done()
	for _, l := range ls {
		l.conn.Close() // its reader returns
		l.mu.Lock()
		l.closed = true
		for _, sess := range l.table {
			sess.stop(ErrUDPShutdown)
		}
		l.mu.Unlock()
	}
	wg.Wait()
	return nil
}

// udpListener is one listening socket and its session table.
type udpListener[C any] struct {
	svc   *UDPService[C]
	conn  *net.UDPConn
	local netip.AddrPort

	mu     sync.Mutex
	table  map[netip.AddrPort]*udpSession[C] // guarded by mu
	closed bool                              // guarded by mu: no new session
}

// serve reads the listening socket until it is closed. It is the only goroutine that
// adds sessions to l's table.
func (l *udpListener[C]) serve(ctx context.Context, wg *sync.WaitGroup) {
	s := l.svc
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	var retry udpReadRetry
	for {
		n, from, err := s.recv(l.conn, buf)
		// Windows reports a datagram longer than buf with WSAEMSGSIZE and its first
		// len(buf) bytes: an oversize datagram (below), not a failing socket.
		if err != nil && n <= s.maxDatagram {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !l.readFailed(ctx, &retry, err) {
				return // the service stops
			}
			continue
		}
		if retry.logged > 0 {
			l.readRecovered(&retry)
		}
		s.received.Add(1)
		// An IPv4 client of a dual-stack socket is known by its IPv4 address, as
		// SessionFilter's allow lists expect; replies to it are mapped back.
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if n > s.maxDatagram {
			s.droppedOversize.Add(1)
			continue
		}
		l.mu.Lock()
		sess := l.table[from]
		l.mu.Unlock()
		if sess != nil {
			sess.forward(buf[:n])
			continue
		}
		l.newSession(ctx, wg, from, buf[:n])
	}
}

// udpReadRetry is a listening socket's state after failed reads: the backoff, and what
// of the failures was logged. It belongs to the socket's reading goroutine.
type udpReadRetry struct {
	backoff  acceptretry.Backoff
	logged   time.Duration // the longest wait logged since the last recovery; 0: none
	lastLog  time.Duration // service time of the last line
	failures int64         // failed reads since the last line
}

// readFailed logs a failed read of the listening socket if its wait is longer than
// any logged since the socket last recovered, then waits; it reports false, at once,
// if the service stops meanwhile.
func (l *udpListener[C]) readFailed(ctx context.Context, r *udpReadRetry, err error) bool {
	s := l.svc
	wait := r.backoff.Next()
	r.failures++
	if wait > r.logged {
		s.logger.Warn("udp read failed; retrying", "service", s.name, "addr", l.local,
			"error", err, "backoff", wait, "failures", r.failures)
		r.logged, r.lastLog, r.failures = wait, s.now(), 0
	}
	return acceptretry.Wait(wait, ctx.Done())
}

// readRecovered starts the backoff again after a read that succeeded, and the log of
// failures too once the last line is a second old: failures that come and go at a
// high rate log a few lines, not one each.
func (l *udpListener[C]) readRecovered(r *udpReadRetry) {
	r.backoff.Reset()
	s := l.svc
	if s.now()-r.lastLog < udpLimitLogEvery {
		return
	}
	s.logger.Info("udp read recovered", "service", s.name, "addr", l.local, "failures", r.failures)
	*r = udpReadRetry{}
}

// newSession starts a session for client, whose first datagram is b, if the bound
// and SessionFilter allow.
func (l *udpListener[C]) newSession(ctx context.Context, wg *sync.WaitGroup, client netip.AddrPort, b []byte) {
	s := l.svc
	if s.open.Add(1) > s.maxSessions {
		s.open.Add(-1)
		dropped := s.droppedLimit.Add(1)
		if now, last := int64(s.now()), s.lastLimitLog.Load(); now-last >= int64(udpLimitLogEvery) && s.lastLimitLog.CompareAndSwap(last, now) {
			s.logger.Warn("udp session limit reached, dropping datagrams of new clients",
				"service", s.name, "max_sessions", s.maxSessions, "client", client, "dropped_total", dropped)
		}
		return
	}
	c, err := l.admit(ctx, client)
	if err != nil {
		s.open.Add(-1)
		s.droppedFiltered.Add(1)
		s.logger.Debug("udp session refused", "service", s.name, "client", client, "error", err)
		return
	}
	sess := &udpSession[C]{l: l, c: c}
	sess.info.client = client
	sess.info.local = l.local
	sess.info.start = time.Now()
	sess.last.Store(int64(s.now()))
	p := s.bufs.Get().(*[]byte)
	*p = (*p)[:cap(*p)]
	sess.pending = append(sess.pending, pendingDatagram{p, copy(*p, b)})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		s.open.Add(-1)
		s.bufs.Put(p)
		return
	}
	l.table[client] = sess
	l.mu.Unlock()
	s.sessionsTotal.Add(1)
	wg.Go(func() { sess.run(ctx) })
}

// admit runs NewCtx and SessionFilter, turning a panic into an error.
func (l *udpListener[C]) admit(ctx context.Context, client netip.AddrPort) (c C, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrUDPPanic, v)
			l.svc.logger.Error("udp phase panicked", "service", l.svc.name, "client", client, "panic", v)
		}
	}()
	c = l.svc.app.NewCtx()
	return c, l.svc.app.SessionFilter(ctx, client, c)
}

// pendingDatagram is a client datagram kept while the session's UpstreamPeer runs.
type pendingDatagram struct {
	buf *[]byte
	n   int
}

// udpSession is one session: its goroutine (run) reads the upstream socket; the
// listener's reader calls forward and stop.
type udpSession[C any] struct {
	l    *udpListener[C]
	c    C
	info UDPSession
	last atomic.Int64 // service time of the last datagram either way

	conn atomic.Pointer[net.UDPConn] // set once connected and pending was sent

	mu      sync.Mutex
	pending []pendingDatagram // guarded by mu, until conn is set
	reason  error             // guarded by mu: why the session ends, first one wins
	done    bool              // guarded by mu
	upconn  *net.UDPConn      // guarded by mu: the upstream socket, to close in stop
}

// forward sends a client datagram upstream, or keeps it while the session connects.
func (sess *udpSession[C]) forward(b []byte) {
	s := sess.l.svc
	c := sess.conn.Load()
	if c == nil {
		sess.mu.Lock()
		c = sess.conn.Load() // connected meanwhile?
		if c != nil {
			sess.mu.Unlock()
		}
	}
	if c != nil {
		if err := sess.write(c, b); err != nil {
			sess.stop(err)
		}
		return
	}
	if sess.done || len(sess.pending) >= udpMaxPending {
		sess.mu.Unlock()
		s.droppedPending.Add(1)
		return
	}
	p := s.bufs.Get().(*[]byte)
	*p = (*p)[:cap(*p)]
	sess.pending = append(sess.pending, pendingDatagram{p, copy(*p, b)})
	sess.mu.Unlock()
}

// write sends b on the upstream socket c and counts it. An error it returns should
// end the session.
func (sess *udpSession[C]) write(c *net.UDPConn, b []byte) error {
	s := sess.l.svc
	if _, err := c.Write(b); err != nil {
		if errors.Is(err, net.ErrClosed) {
			s.droppedPending.Add(1) // the session is ending
			return nil
		}
		// A connected socket reports an earlier ICMP error (port unreachable) on
		// the next write or read, only once: the session ends on either.
		s.upstreamErrors.Add(1)
		return fmt.Errorf("%w %s: %w", ErrUDPUpstream, sess.info.Upstream(), err)
	}
	sess.last.Store(int64(s.now()))
	sess.info.datagramsUp.Add(1)
	sess.info.bytesUp.Add(int64(len(b)))
	s.datagramsUp.Add(1)
	s.bytesUp.Add(int64(len(b)))
	return nil
}

// stop ends the session with reason (unless it is ending already): its goroutine's
// read returns.
func (sess *udpSession[C]) stop(reason error) {
	sess.mu.Lock()
	if sess.reason == nil {
		sess.reason = reason
	}
	sess.done = true
	c := sess.upconn
	sess.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// run is the session's goroutine: UpstreamPeer, then the upstream's datagrams to the
// client until the session ends, then Logging.
func (sess *udpSession[C]) run(ctx context.Context) {
	s := sess.l.svc
	var conn *net.UDPConn
	var bp *[]byte
	var co *connObs
	if len(s.observers) > 0 {
		co = openConn(s.logger, s.observers, observe.Conn{Service: s.name, Remote: sess.info.client.String(),
			Local: sess.info.local.String(), Proto: "UDP", Start: sess.info.start})
	}
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("%w: %v", ErrUDPPanic, v)
				s.logger.Error("udp phase panicked", "service", s.name, "client", sess.info.client, "panic", v)
			}
		}()
		addr, err := s.app.UpstreamPeer(ctx, &sess.info, sess.c)
		if err != nil {
			if ctx.Err() == nil { // not cut short by the service's stop
				s.peerErrors.Add(1)
			}
			return fmt.Errorf("%w: %w", ErrUDPPeer, err)
		}
		sess.info.upstream.Store(&addr)
		var d net.Dialer
		start := time.Now()
		nc, err := d.DialContext(ctx, "udp", addr)
		if co != nil {
			t := dialTimes{}
			if err == nil {
				t.connected = time.Now()
			}
			co.upstream(addr, start, &t, err)
		}
		if err != nil {
			if ctx.Err() == nil { // not cut short by the service's stop
				s.peerErrors.Add(1)
			}
			return fmt.Errorf("%w: %w", ErrUDPPeer, err)
		}
		conn = nc.(*net.UDPConn)
		bp = s.bufs.Get().(*[]byte)
		*bp = (*bp)[:cap(*bp)]
		return sess.serve(conn, *bp)
	}()

	// End: out of the table first, then the count, so the bound never undercounts.
	sess.stop(err)
	sess.mu.Lock()
	if err = sess.reason; err == nil {
		err = ErrUDPShutdown // stopped with no reason of its own: Run closed its socket
	}
	pending := sess.pending
	sess.pending = nil
	sess.mu.Unlock()
	for _, p := range pending {
		s.droppedPending.Add(1)
		s.bufs.Put(p.buf)
	}
	if conn != nil {
		conn.Close()
	}
	if bp != nil {
		s.bufs.Put(bp)
	}
	l := sess.l
	l.mu.Lock()
	if l.table[sess.info.client] == sess {
		delete(l.table, sess.info.client)
	}
	l.mu.Unlock()
	s.open.Add(-1)
	sess.info.end.Store(time.Now().UnixNano())
	if co != nil {
		co.close(sess.info.bytesDown.Load(), sess.info.bytesUp.Load())
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				s.logger.Error("udp Logging panicked", "service", s.name, "client", sess.info.client, "panic", v)
			}
		}()
		s.app.Logging(ctx, &sess.info, sess.c, err)
	}()
}

// serve sends the pending datagrams on conn, then copies the upstream's datagrams to
// the client until the session ends; it returns why.
func (sess *udpSession[C]) serve(conn *net.UDPConn, buf []byte) error {
	s := sess.l.svc
	sess.mu.Lock()
	if sess.done {
		sess.mu.Unlock()
		return nil // stop set the reason
	}
	sess.upconn = conn
	var werr error
	for _, p := range sess.pending {
		if werr == nil {
			werr = sess.write(conn, (*p.buf)[:p.n])
		} else {
			s.droppedPending.Add(1)
		}
		s.bufs.Put(p.buf)
	}
	sess.pending = nil
	sess.conn.Store(conn)
	sess.mu.Unlock()
	if werr != nil {
		return werr
	}

	// The deadline is moved only when it fires: a busy session costs no timer update
	// per datagram.
	deadline := func() time.Time {
		return s.epoch.Add(time.Duration(sess.last.Load()) + s.idle)
	}
	if err := conn.SetReadDeadline(deadline()); err != nil {
		return fmt.Errorf("%w %s: %w", ErrUDPUpstream, sess.info.Upstream(), err)
	}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				d := deadline()
				if !time.Now().Before(d) {
					return ErrUDPIdle
				}
				if err := conn.SetReadDeadline(d); err != nil {
					return fmt.Errorf("%w %s: %w", ErrUDPUpstream, sess.info.Upstream(), err)
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil // stop set the reason
			}
			s.upstreamErrors.Add(1)
			return fmt.Errorf("%w %s: %w", ErrUDPUpstream, sess.info.Upstream(), err)
		}
		if n > s.maxDatagram {
			s.droppedOversize.Add(1)
			continue
		}
		if err := s.reply(sess.l.conn, buf[:n], sess.info.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return ErrUDPShutdown // Run closed the listening socket
			}
			// The kernel refused the reply (a full send buffer, ENOBUFS): the datagram
			// is lost, as it could be on the way; counted, and the session goes on.
			s.droppedReplies.Add(1)
			s.logger.Debug("udp write to client", "service", s.name, "client", sess.info.client, "error", err)
			continue
		}
		sess.last.Store(int64(s.now()))
		sess.info.datagramsDown.Add(1)
		sess.info.bytesDown.Add(int64(n))
		s.datagramsDown.Add(1)
		s.bytesDown.Add(int64(n))
	}
}
