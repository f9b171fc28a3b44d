package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/acceptretry"
	"github.com/gotthard-proxy/gotthard/internal/arena"
	"github.com/gotthard-proxy/gotthard/internal/h1"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	"github.com/gotthard-proxy/gotthard/internal/proxyproto"
	"github.com/gotthard-proxy/gotthard/internal/upwatch"
	"github.com/gotthard-proxy/gotthard/observe"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// ServiceOptions configures a [Service]. Zero fields mean the default given for each; so
// do negative sizes and timeouts (and negative timeouts in [PeerOptions]), except where a
// field gives negative a meaning of its own. [ServiceOptions.Validate] checks the rest, and Serve
// refuses options it rejects.
type ServiceOptions struct {
	// Logger receives error and lifecycle logs. If nil, slog.Default().
	Logger *slog.Logger
	// Observers see the service's requests, each with its attempts, in the order of
	// the slice (package observe documents the events); those that implement
	// observe.ConnObserver also see its client connections and new upstream
	// connections. Metrics, traces, error reports and access logs are observers (see
	// the sub-packages of observe). Without any, a request pays one nil check per
	// event. A nil element is refused.
	Observers []observe.Observer
	// Modules run around the user's phases on every request, in the order of the
	// slice: request filters before the user's, response filters after them (see
	// [Module]). A nil element, or two with the same Name, is refused.
	Modules []Module

	// MaxHeadBytes bounds a request head (request line and fields). If zero, 32 KiB.
	// Larger heads get 431.
	MaxHeadBytes int
	// MaxHeaderCount bounds the number of request fields. If zero, 100.
	MaxHeaderCount int
	// MaxLineBytes bounds one line of a head. If zero, 8 KiB.
	MaxLineBytes int
	// BufferSize is the size of the pooled read and write buffers. If zero, 16 KiB.
	// Upstream connections write through buffers of at most 4 KiB: a request's head is
	// small, and larger body pieces are written without a buffer.
	BufferSize int

	// KeepaliveTimeout is how long a client connection may stay idle between requests,
	// and how long a client has to send a whole request head. If zero, 60s.
	KeepaliveTimeout time.Duration
	// ClientBodyTimeout bounds each wait for request body data from the client. If zero,
	// 60s.
	ClientBodyTimeout time.Duration
	// MinRequestBodyRate is the rate, in bytes a second, below which an HTTP/1.x
	// client's request body is cut: counted over the time spent waiting on the client
	// (not the time the peer takes), the body must average at least this once
	// MinRequestBodyRateGrace has passed, or the request ends with 408 (if no response
	// started) and the peer's connection is closed. It stops a client that trickles its
	// body from holding a peer's connection, which ClientBodyTimeout alone does not:
	// each byte would renew it. If zero, 500 (as Apache's mod_reqtimeout); negative
	// means no minimum rate.
	MinRequestBodyRate int
	// MinRequestBodyRateGrace is the waiting time a request body may take before
	// MinRequestBodyRate applies. If zero, 20s.
	MinRequestBodyRateGrace time.Duration
	// BufferRequestBody makes the proxy read every request body whole, up to
	// RequestBodyBufferLimit, before it asks a peer, as nginx's proxy_request_buffering
	// does: a slow client then holds no upstream connection, and a request whose
	// method is idempotent can be retried on another peer. A longer body gets 413. It
	// does not apply to gRPC calls, WebSockets and CONNECT tunnels, which stream. If
	// false, bodies stream to the peer as they arrive (a phase can still buffer one
	// with Session.BufferRequestBody).
	BufferRequestBody bool
	// RequestBodyBufferLimit bounds the body BufferRequestBody reads, and so the memory
	// one request holds. If zero, 1 MiB.
	RequestBodyBufferLimit int64
	// SendTimeout bounds each wait to write to the client. If zero, 60s.
	SendTimeout time.Duration
	// MaxRequestsPerConn closes a client connection after that many requests. If zero,
	// 10000; negative means no limit.
	MaxRequestsPerConn int

	// MaxRetries bounds the retries of one request (see ProxyHTTP.FailToConnect). If
	// zero, 3; negative means no retries. A retry to a peer that could not be connected
	// to waits first when it goes to the same peer: 10ms, doubling for each further one,
	// at most 1s.
	MaxRetries int
	// UpstreamKeepalivePoolSize is the number of idle connections kept per peer. If zero,
	// 128; negative means upstream connections are not reused.
	UpstreamKeepalivePoolSize int
	// MaxUpstreamPeers bounds the number of peer identities whose state the upstream
	// pool keeps (idle connections, TLS session cache, HTTP/2 transports): past it, when
	// a new peer comes, the state of the least recently used peers with no connection
	// open is dropped. If zero (or negative), 10000. The state of a peer with no
	// connection open is also dropped once unused for three of its idle timeouts.
	MaxUpstreamPeers int

	// TrustedProxies lists the client addresses whose X-Forwarded-For, X-Forwarded-Proto
	// and X-Forwarded-Host fields are kept (and appended to). Those fields from any other
	// client are removed before the phases run. If empty, no client is trusted.
	TrustedProxies []netip.Prefix
	// NoForwardedHeaders stops the framework from setting X-Forwarded-For,
	// X-Forwarded-Proto and X-Forwarded-Host on upstream requests. Untrusted incoming
	// ones are still removed.
	NoForwardedHeaders bool
	// H2MaxConcurrentStreams is the number of concurrent streams an HTTP/2 client may
	// open on one connection. If zero, 128. A stream the client reset keeps its place
	// until the proxy's work for it has ended (docs/http2.md, "Denial of service").
	H2MaxConcurrentStreams uint32
	// H2MaxStreams bounds the HTTP/2 requests the service handles at once, over all
	// its client connections, streams the client reset whose work has not ended yet
	// included. A stream beyond it is refused with RST_STREAM(REFUSED_STREAM), which
	// clients retry. If zero, 4096; negative means no bound.
	H2MaxStreams int

	// Via, if not empty, is the pseudonym added as "Via: 1.1 <Via>" to requests sent
	// upstream and to responses (RFC 9110 §7.6.3).
	Via string

	// AllowConnect makes the service a forward proxy for CONNECT requests: the phases
	// run as for any request (RequestFilter decides which targets are allowed;
	// UpstreamPeer returns the peer to connect to, usually the request's target), then
	// the client gets "200 Connection Established" and the connection (over HTTP/2, the
	// stream) becomes a tunnel to the peer. If false, CONNECT is answered with 405. It
	// does not concern WebSockets over HTTP/2 (extended CONNECT), which are always
	// carried.
	AllowConnect bool
	// AllowTrace lets TRACE requests through the phases to the peer. If false, TRACE is
	// answered with 405 before any phase but EarlyRequestFilter runs, as nginx does: a
	// TRACE echoes the request back, fields a proxy or a phase added (credentials,
	// internal addresses) included (RFC 9110 §9.3.8).
	AllowTrace bool
	// IgnoreClientAbort keeps a request going when its HTTP/1.x client closes its
	// connection, or only its sending half, while the peer is asked, like nginx's
	// proxy_ignore_client_abort. If false, as in nginx, a client that closed either way
	// is taken as gone: the peer's connection is closed (not pooled), the request is not
	// retried, and it ends with status 499 ([StatusClientClosedRequest]), logged at
	// debug level, with no answer written. Set it for clients that send a request, shut
	// down their sending half on purpose and wait for the answer. The check runs a few
	// times a second, on Linux only. (An HTTP/2 client's reset stream always ends its
	// request.)
	IgnoreClientAbort bool
	// TunnelIdleTimeout ends a tunnel (a WebSocket connection or a CONNECT tunnel) in
	// which no byte moved either way for that long. If zero, 5 minutes.
	TunnelIdleTimeout time.Duration

	// TLSHandshakeTimeout bounds the TLS handshake of a client connection on an endpoint
	// added with AddTLS. If zero, 10s.
	TLSHandshakeTimeout time.Duration

	// ProxyProtocol accepts the PROXY protocol header (versions 1 and 2) from load
	// balancers on the service's TCP endpoints (AddTCP and AddTLS; the header comes
	// before TLS). If its Trusted list is empty, no header is accepted.
	ProxyProtocol ProxyProtocolOptions
}

// ProxyProtocolOptions configures the PROXY protocol on a service's TCP endpoints
// (docs/l4-proxy-protocol.md). A connection from a Trusted address may (if Required,
// must) start with a header; the client it names is then the connection's client:
// [Session.ClientAddr], [Session.ServerAddr], X-Forwarded-For, TrustedProxies and the
// logs use its addresses. A header from any other address, a missing one where
// Required, or a malformed one closes that connection with one Warn log line. The
// header is read on the connection's own goroutine, within HeaderTimeout, so a slow
// balancer holds up no other connection.
type ProxyProtocolOptions struct {
	// Trusted lists the addresses of the balancers that send the header. If empty,
	// the PROXY protocol is off.
	Trusted []netip.Prefix
	// Required makes the header mandatory on connections from Trusted addresses. If
	// false, one that comes without a header is served with its own addresses.
	Required bool
	// HeaderTimeout bounds the wait for the header. If zero, 5s.
	HeaderTimeout time.Duration
}

// Validate reports options that cannot work: a Via pseudonym that is not a valid field
// value (it would make every upstream request invalid), a TrustedProxies entry that
// is not a valid prefix (the zero netip.Prefix), a MinRequestBodyRate above 1 GiB/s,
// or ProxyProtocol options with an invalid Trusted prefix, a negative HeaderTimeout,
// or Required with no Trusted address.
func (o ServiceOptions) Validate() error {
	if o.Via != "" && !h1.ValidFieldValue(o.Via) {
		return fmt.Errorf("proxy: Via %q is not a valid header field value", o.Via)
	}
	if o.MinRequestBodyRate > maxMinBodyRate {
		return fmt.Errorf("proxy: MinRequestBodyRate %d is above %d bytes a second", o.MinRequestBodyRate, maxMinBodyRate)
	}
	for i, p := range o.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("proxy: TrustedProxies[%d] is not a valid prefix", i)
		}
	}
	for i, ob := range o.Observers {
		if ob == nil {
			return fmt.Errorf("proxy: Observers[%d] is nil", i)
		}
	}
	for i, m := range o.Modules {
		if m == nil {
			return fmt.Errorf("proxy: Modules[%d] is nil", i)
		}
		for j := range i {
			if o.Modules[j].Name() == m.Name() {
				return fmt.Errorf("proxy: Modules[%d] has the name %q of Modules[%d]", i, m.Name(), j)
			}
		}
	}
	for i, p := range o.ProxyProtocol.Trusted {
		if !p.IsValid() {
			return fmt.Errorf("proxy: ProxyProtocol.Trusted[%d] is not a valid prefix", i)
		}
	}
	switch {
	case o.ProxyProtocol.HeaderTimeout < 0:
		return fmt.Errorf("proxy: ProxyProtocol.HeaderTimeout %v is negative", o.ProxyProtocol.HeaderTimeout)
	case o.ProxyProtocol.Required && len(o.ProxyProtocol.Trusted) == 0:
		return errors.New("proxy: ProxyProtocol.Required is set but ProxyProtocol.Trusted is empty")
	}
	return nil
}

// Service is a proxy service: it accepts client connections on its endpoints and proxies
// their requests through the phases of a [ProxyHTTP]. It satisfies the server package's
// ListeningService, so a server.Server runs it; it can also be run on its own with
// [Service.Serve]. Its methods are safe for concurrent use.
type Service[C any] struct {
	name   string
	app    ProxyHTTP[C]
	opts   ServiceOptions
	log    *slog.Logger
	limits h1.Limits
	bufs   *h1.BufPool
	arenas arena.Pool
	pool   *connPool
	via    string
	h2max  *h2.Limit // H2MaxStreams; nil means no bound
	// bodyRate is the minimum request body rate of the options, copied into each
	// HTTP/1.x request's session.
	bodyRate bodyRate
	obs      observers // ServiceOptions.Observers

	date      dateCache // the Date of the responses the proxy writes itself
	exchanges sync.Pool // *exchange[C]
	workers   *workerPool[C]
	idle      *idlePoller[C] // parks idle HTTP/1.x connections; nil where unsupported

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	endpoints []net.Addr
	listeners []net.Listener
	conns     map[*conn[C]]struct{}
	// ppPending holds the connections whose PROXY protocol header is being read
	// (proxyproto.go); ppOpts is nil when the protocol is off.
	ppPending map[*proxyproto.Conn]struct{}
	ppOpts    *proxyproto.Options
	refreshes map[*conn[C]]struct{} // the background refreshes of the cache (cache_refresh.go)
	closing   atomic.Bool           // no new requests: shutting down or closed
	// streamsClosing is set by CloseStreams during a shutdown: long-lived streams are
	// ended as they open.
	streamsClosing atomic.Bool
	done           chan struct{}
	doneOnce       sync.Once
	wg             sync.WaitGroup // accept loops, workers, the pool sweeper
	connWG         sync.WaitGroup // connections
}

// NewService returns a proxy service named name that proxies with app. It returns an
// error, and no service, for an empty name, a nil app, or options that cannot work
// ([ServiceOptions.Validate]).
func NewService[C any](name string, app ProxyHTTP[C], opts ServiceOptions) (*Service[C], error) {
	switch {
	case name == "":
		return nil, errors.New("proxy: NewService: empty service name")
	case app == nil:
		return nil, fmt.Errorf("proxy: NewService %q: nil ProxyHTTP", name)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.TrustedProxies = append([]netip.Prefix(nil), opts.TrustedProxies...)
	opts.ProxyProtocol.Trusted = append([]netip.Prefix(nil), opts.ProxyProtocol.Trusted...)
	opts.Modules = append([]Module(nil), opts.Modules...)
	s := &Service[C]{
		name: name,
		app:  app,
		opts: opts,
		log:  opts.Logger.With("service", name),
		limits: h1.Limits{
			MaxHeadBytes: opts.MaxHeadBytes,
			MaxFields:    opts.MaxHeaderCount,
			MaxLineBytes: opts.MaxLineBytes,
		},
		bufs:  h1.NewBufPool(opts.BufferSize),
		conns: map[*conn[C]]struct{}{},
		done:  make(chan struct{}),
	}
	s.workers = s.newWorkers()
	if pp := opts.ProxyProtocol; len(pp.Trusted) > 0 {
		s.ppOpts = &proxyproto.Options{Trusted: pp.Trusted, Required: pp.Required,
			HeaderTimeout: pp.HeaderTimeout, Logger: s.log}
		s.ppPending = map[*proxyproto.Conn]struct{}{}
	}
	maxIdle := opts.UpstreamKeepalivePoolSize
	if maxIdle == 0 {
		maxIdle = 128
	}
	maxPeers := opts.MaxUpstreamPeers
	if maxPeers <= 0 {
		maxPeers = 10000
	}
	s.pool = newConnPool(maxIdle, maxPeers, s.bufs, h1.Limits{MaxHeadBytes: 64 << 10, MaxFields: 200, MaxLineBytes: 16 << 10})
	if opts.Via != "" {
		s.via = "1.1 " + opts.Via
	}
	switch {
	case opts.H2MaxStreams == 0:
		s.h2max = h2.NewLimit(4096)
	case opts.H2MaxStreams > 0:
		s.h2max = h2.NewLimit(opts.H2MaxStreams)
	}
	s.bodyRate = newBodyRate(&opts)
	s.obs = newObservers(opts.Observers)
	s.pool.service, s.pool.connObs, s.pool.log = name, s.obs.conn, s.log
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// clientWatchInterval is how often the service looks for HTTP/1.x clients that went
// away while their request waits for a peer.
const clientWatchInterval = 200 * time.Millisecond

// watchClients cuts the requests whose HTTP/1.x client closed while the peer is asked
// (see ServiceOptions.IgnoreClientAbort), until the service is done. A request costs it
// nothing while it runs: each tick it looks at the connections whose request waits
// (conn.waitEx) and asks the kernel, without reading, whether their client closed.
func (s *Service[C]) watchClients() {
	defer s.wg.Done()
	t := time.NewTicker(clientWatchInterval)
	defer t.Stop()
	var waiting []*conn[C]
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for c := range s.conns {
			if c.waitEx.Load() != nil {
				waiting = append(waiting, c)
			}
		}
		s.mu.Unlock()
		for _, c := range waiting {
			if ex := c.waitEx.Load(); ex != nil {
				if rc := rawConnOf(c.nc); rc != nil && upwatch.ClientClosed(rc) {
					c.clientLeft(ex)
				}
			}
		}
		clear(waiting)
		waiting = waiting[:0]
	}
}

// rawConnOf returns the socket under nc (a TLS connection's too), or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Name returns the service's name.
func (s *Service[C]) Name() string { return s.name }

// AddTCP adds a TCP endpoint ("host:port"; port 0 picks a free one).
func (s *Service[C]) AddTCP(addr string) { s.addEndpoint(endpoint{network: "tcp", address: addr}) }

// AddUnix adds a Unix socket endpoint at path.
func (s *Service[C]) AddUnix(path string) { s.addEndpoint(endpoint{network: "unix", address: path}) }

func (s *Service[C]) addEndpoint(e endpoint) {
	s.mu.Lock()
	s.endpoints = append(s.endpoints, e)
	s.mu.Unlock()
}

// Endpoints returns the endpoints added with AddTCP, AddTLS and AddUnix, as addresses
// whose Network is "tcp" or "unix" (a TLS endpoint is a plain TCP listener: the service
// does the TLS on each accepted connection). Each also has a method TLS() bool that
// reports whether it is a TLS endpoint.
func (s *Service[C]) Endpoints() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.endpoints...)
}

// PoolStats returns the counts of the service's upstream connection pool.
func (s *Service[C]) PoolStats() PoolStats { return s.pool.stats() }

// ListenAndServe listens on the service's endpoints and serves until Shutdown or Close.
// Use it to run a service without a server.Server.
func (s *Service[C]) ListenAndServe() error {
	eps := s.Endpoints()
	lns := make([]net.Listener, 0, len(eps))
	for _, ep := range eps {
		ln, err := net.Listen(ep.Network(), ep.String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("proxy: service %s: %w", s.name, err)
		}
		lns = append(lns, ln)
	}
	return s.Serve(lns)
}

// Serve accepts connections on lns and serves them until Shutdown or Close, then returns
// nil. It owns the listeners from then on. An Accept that fails is retried after a
// backoff, unless the listener is closed (see docs/configuration.md). It returns an
// error at once (closing lns) if the service was already closed, lns is empty, or its
// options fail [ServiceOptions.Validate].
func (s *Service[C]) Serve(lns []net.Listener) error {
	if len(lns) == 0 {
		return errors.New("proxy: Serve needs at least one listener")
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		return errors.New("proxy: service " + s.name + " is closed")
	}
	lns, err := s.wrapProxyProtocol(lns)
	if err != nil {
		s.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	s.listeners = append(s.listeners, lns...)
	s.wg.Add(len(lns) + 1)
	if !s.opts.IgnoreClientAbort {
		s.wg.Add(1)
	}
	s.mu.Unlock()

	go s.sweepLoop()
	if !s.opts.IgnoreClientAbort {
		go s.watchClients()
	}
	s.mu.Lock()
	if s.idle == nil {
		if s.idle = newIdlePoller(s); s.idle != nil {
			go s.idle.Run()
		}
	}
	s.mu.Unlock()
	if s.pool.watch != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.pool.watch.Run()
		}()
	}
	for i, ln := range lns {
		go s.acceptLoop(ln, s.endpointTLS(i))
	}
	<-s.done
	return nil
}

func (s *Service[C]) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.pool.sweep(now)
		}
	}
}

func (s *Service[C]) acceptLoop(ln net.Listener, tcfg *gtls.Config) {
	defer s.wg.Done()
	var backoff acceptretry.Backoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return
			}
			if !backoff.Retry(err, ln, s.log, "", s.done) {
				return
			}
			continue
		}
		backoff.Reset()
		if pc, ok := nc.(*proxyproto.Conn); ok {
			s.acceptProxyProtocol(pc, tcfg)
			continue
		}
		c := s.newConn(wrapTLS(nc, tcfg))
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Service[C]) removeConn(c *conn[C]) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// shutdownIdleLinger is how long Shutdown leaves idle HTTP/1.x keep-alive connections
// open. A client may have sent its next request just as the shutdown began; closing
// the connection under it would make it fail (clients retry only some requests, and
// load generators none). During the linger such a request is served, with
// Connection: close, and the connection closes after it. Connections still idle after
// it are closed.
const shutdownIdleLinger = 100 * time.Millisecond

// Shutdown stops accepting, lets in-flight requests finish (their connections close after
// the response) and closes idle connections, after a short linger (100 ms) in which a
// request that was already on its way on one of them is still served. If ctx ends
// first, it closes the remaining connections as [Service.Close] does and returns
// ctx.Err().
func (s *Service[C]) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	// HTTP/2 connections get GOAWAY and finish their streams. Those left when ctx ends
	// are closed by Close, after it cancelled the service's context: their requests then
	// end as cut by the closing (ErrShutdown), not as left by their clients.
	s.mu.Lock()
	for c := range s.conns {
		if c.h2c.Load() != nil {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.shutdownH2(s.ctx)
			}()
		}
	}
	s.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	lingerEnd := time.Now().Add(shutdownIdleLinger)
	for {
		var none bool
		if time.Now().Before(lingerEnd) {
			s.mu.Lock()
			none = len(s.conns) == 0
			s.mu.Unlock()
		} else {
			none = s.closeIdle()
		}
		if none {
			s.finish()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the listeners and every connection at once and waits for their goroutines.
// The requests it cuts end with an error that wraps [ErrShutdown]: they are not retried,
// and their failure phases do not run (Logging does).
func (s *Service[C]) Close() error {
	s.stopAccepting()
	s.cancel()
	s.mu.Lock()
	var parked, active []*conn[C]
	for c := range s.conns {
		if c.unpark() {
			parked = append(parked, c) // no goroutine of its own to see the close
		} else {
			active = append(active, c)
		}
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.end()
	}
	s.cutRefreshes()
	// Closing a connection waits until no goroutine is inside a read of it, and a hot
	// one (see hot.go) serves its requests from inside its read: close each on its own,
	// its peer first, and hold no lock meanwhile.
	var closers sync.WaitGroup
	for _, c := range active {
		closers.Go(func() {
			if uc := c.up.Load(); uc != nil {
				uc.nc.Close() // a request waiting on its peer ends now, not at its timeout
			}
			c.nc.Close()
		})
	}
	s.finish()
	closers.Wait()
	return nil
}

func (s *Service[C]) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	for pc := range s.ppPending {
		pc.Close() // no request came yet
	}
}

// closeIdle closes connections waiting for a request and reports whether none is left.
func (s *Service[C]) closeIdle() bool {
	s.mu.Lock()
	s.idle.KickAll() // a connection waiting hot goes back to parking, where it ends
	var parked []*conn[C]
	for c := range s.conns {
		if c.detached.Load() {
			// No goroutine waits on it to notice a close: end it here, if parked.
			if c.unpark() {
				parked = append(parked, c)
			}
			continue
		}
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.end()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) == 0
}

func (s *Service[C]) finish() {
	s.doneOnce.Do(func() { close(s.done) })
	// Connections end first; then no worker has work left, and the idle ones are told
	// to stop. Workers still finishing a request stop when they see the pool stopped.
	s.connWG.Wait()
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	idle.Close()
	s.workers.Stop()
	s.pool.watch.Stop()
	s.wg.Wait()
	s.pool.watch.Release()
	s.pool.closeAll()
	s.cancel()
}

// endpoint is a net.Addr for an address a service listens on.
type endpoint struct {
	network, address string
	tls              *gtls.Config // nil for plain connections
}

// Network returns "tcp" or "unix".
func (e endpoint) Network() string { return e.network }

// String returns the address, "host:port" or a socket's path.
func (e endpoint) String() string { return e.address }

// TLS reports whether the service does TLS on the connections the endpoint accepts (an
// endpoint added with AddTLS). Its listener is a plain one either way: a server that
// hands listening sockets to another process reads it to tell them apart.
func (e endpoint) TLS() bool { return e.tls != nil }

func (s *Service[C]) maxRetries() int {
	switch {
	case s.opts.MaxRetries < 0:
		return 0
	case s.opts.MaxRetries == 0:
		return 3
	}
	return s.opts.MaxRetries
}

func durOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
