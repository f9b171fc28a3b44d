package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/acceptretry"
	"github.com/gotthard-proxy/gotthard/internal/gopool"
	"github.com/gotthard-proxy/gotthard/internal/idle"
	"github.com/gotthard-proxy/gotthard/internal/proxyproto"
	"github.com/gotthard-proxy/gotthard/observe"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// ServiceOptions configures a [Service]. The zero value serves without a connection
// limit, with a 5 minute idle timeout, no total timeout and a 10s connect timeout.
type ServiceOptions struct {
	// Logger receives error and lifecycle logs. If nil, slog.Default().
	Logger *slog.Logger
	// MaxConns limits the connections being served at once, counted from their accept
	// until their end. When the limit is reached the service stops accepting: the next
	// clients wait in the listen backlog (their connect succeeds at the kernel, their
	// bytes wait) until a connection ends. If zero, no limit. It must not be negative.
	MaxConns int
	// IdleTimeout ends a connection when no byte moved either way for this long (see
	// the package documentation for its precision). If zero, 5 minutes; if negative,
	// none.
	IdleTimeout time.Duration
	// TotalTimeout ends a connection this long after its accept, whatever it is doing.
	// If zero, none. It must not be negative.
	TotalTimeout time.Duration
	// ConnectTimeout bounds each connection attempt to a peer (dial and TLS handshake)
	// whose Peer.ConnectTimeout is zero. If zero, 10s. It must not be negative.
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with clients on endpoints added with
	// AddTLS, and the read of the ClientHello on those added with AddTLSPassthrough. If
	// zero, 10s. It must not be negative.
	TLSHandshakeTimeout time.Duration
	// MaxRetries caps the extra connection attempts that FailToConnect may ask for, per
	// client connection. If zero, 3; if negative, none.
	MaxRetries int
	// ProxyProtocol accepts the PROXY protocol header (versions 1 and 2) from load
	// balancers on the service's TCP endpoints (AddTCP, AddTLS and AddTLSPassthrough;
	// the header comes before TLS), as the HTTP proxy's option of the same name does
	// (docs/l4-proxy-protocol.md): Session.ClientAddr and LocalAddr are then the
	// header's. If its Trusted list is empty, no header is accepted.
	ProxyProtocol ProxyProtocolOptions
	// Observers see the service's connections (package observe): ConnOpen when a client
	// connection is accepted (after its PROXY protocol header, if any), ConnTLS when
	// the TLS handshake of an AddTLS endpoint ended, UpstreamConn for each connection
	// to a peer, made or failed, and ConnClose when the connection ended, before
	// Logging; observe.Conn's Proto is "TCP". A Prometheus observer
	// (observe/prometheus) and the admin service's Stats count them as they count an
	// HTTP service's. Without observers nothing is spent on them. No entry may be nil.
	Observers []observe.ConnObserver
}

// ProxyProtocolOptions configures the PROXY protocol on a service's TCP endpoints. A
// connection from a Trusted address may (if Required, must) start with a header; a
// header from any other address, a missing one where Required, or a malformed one ends
// that connection with one log line. The header is read on the connection's own
// goroutine within HeaderTimeout (if zero, 5s).
type ProxyProtocolOptions struct {
	Trusted       []netip.Prefix
	Required      bool
	HeaderTimeout time.Duration
}

// ppOptions returns the listener options of o.ProxyProtocol.
func (o ServiceOptions) ppOptions() proxyproto.Options {
	pp := o.ProxyProtocol
	return proxyproto.Options{Trusted: pp.Trusted, Required: pp.Required, HeaderTimeout: pp.HeaderTimeout, Logger: o.Logger}
}

// Service is a TCP proxy service: it accepts client connections on its endpoints, asks
// the [ProxyTCP] phases where each goes, connects, and copies bytes both ways until both
// sides are done. It is a server.ListeningService and a server.StreamCloser by its
// method set; add it to a server.Server, or run it alone with ListenAndServe.
//
// Endpoints are added before Serve; the other methods are safe for concurrent use.
type Service[C any] struct {
	name string
	app  ProxyTCP[C]
	opts ServiceOptions
	log  *slog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	slots  chan struct{} // MaxConns tokens; nil when unlimited
	stop   chan struct{} // closed when the service stops accepting
	bufs   sync.Pool     // *[]byte copy buffers for the connections that cannot splice
	// poll parks idle connections without a goroutine while Serve runs; nil where
	// there is none. Set by Serve before it accepts.
	poll *idle.Poller[*half]
	// copyCfg is what the connections' copies share; its poll is set by Serve before
	// it accepts.
	copyCfg copyCfg

	mu        sync.Mutex
	endpoints []net.Addr
	lns       []net.Listener
	// conns are the connections being served, each at its index (conn.slot): a
	// slice of pointers rather than a map, 8 bytes a connection instead of about 40.
	conns   []*conn[C]
	closing bool
	accepts sync.WaitGroup // accept loops
	active  sync.WaitGroup // connections; Add under mu while !closing
}

// endpoint is an address added with AddTCP, AddUnix, AddTLS or AddTLSPassthrough.
type endpoint struct {
	network, address string
	tls              *gtls.Config
	passthrough      bool // read the ClientHello, do not terminate
}

func (e endpoint) Network() string { return e.network }
func (e endpoint) String() string  { return e.address }

// TLS reports whether the service terminates TLS on this endpoint (one added with
// AddTLS). Its listener is a plain one either way.
func (e endpoint) TLS() bool { return e.tls != nil }

// NewService returns a TCP proxy service named name whose connections run app's phases.
// It fails with an error naming the field when an option is out of range.
func NewService[C any](name string, app ProxyTCP[C], opts ServiceOptions) (*Service[C], error) {
	switch {
	case name == "":
		return nil, errors.New("l4: NewService: empty service name")
	case app == nil:
		return nil, errors.New("l4: NewService: nil ProxyTCP")
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("l4: NewService: MaxConns %d is negative", opts.MaxConns)
	case opts.TotalTimeout < 0:
		return nil, fmt.Errorf("l4: NewService: TotalTimeout %v is negative", opts.TotalTimeout)
	case opts.ConnectTimeout < 0:
		return nil, fmt.Errorf("l4: NewService: ConnectTimeout %v is negative", opts.ConnectTimeout)
	case opts.TLSHandshakeTimeout < 0:
		return nil, fmt.Errorf("l4: NewService: TLSHandshakeTimeout %v is negative", opts.TLSHandshakeTimeout)
	}
	for i, o := range opts.Observers {
		if o == nil {
			return nil, fmt.Errorf("l4: NewService: Observers[%d] is nil", i)
		}
	}
	opts.Observers = slices.Clone(opts.Observers)
	if pp := opts.ProxyProtocol; len(pp.Trusted) > 0 || pp.Required || pp.HeaderTimeout != 0 {
		if err := opts.ppOptions().Validate(); err != nil {
			return nil, fmt.Errorf("l4: NewService: ProxyProtocol: %w", err)
		}
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.TLSHandshakeTimeout == 0 {
		opts.TLSHandshakeTimeout = 10 * time.Second
	}
	switch {
	case opts.MaxRetries == 0:
		opts.MaxRetries = 3
	case opts.MaxRetries < 0:
		opts.MaxRetries = 0
	}
	s := &Service[C]{
		name: name,
		app:  app,
		opts: opts,
		log:  opts.Logger,
		stop: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", name)
	if opts.MaxConns > 0 {
		s.slots = make(chan struct{}, opts.MaxConns)
	}
	s.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	s.copyCfg = copyCfg{idle: opts.IdleTimeout, bufs: &s.bufs, gos: gopool.NewFuncs(maxIdleGoroutines())}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Name returns the service's name.
func (s *Service[C]) Name() string { return s.name }

// AddTCP adds a TCP endpoint ("host:port"; port 0 picks a free one).
func (s *Service[C]) AddTCP(addr string) { s.add(endpoint{network: "tcp", address: addr}) }

// AddUnix adds a Unix socket endpoint at path.
func (s *Service[C]) AddUnix(path string) { s.add(endpoint{network: "unix", address: path}) }

// AddTLS adds a TCP endpoint whose connections speak TLS with cfg, which the service
// terminates: the listener stays a plain TCP listener (so a server.Server creates it
// and an upgrade hands it over like any other), and each accepted connection does its
// handshake on its own goroutine after ConnectionFilter, bounded by
// [ServiceOptions.TLSHandshakeTimeout]. The peer then gets the decrypted bytes (or
// bytes encrypted anew, if the Peer has TLS). [Session.TLS] describes the client's TLS.
// Add cfg to the server.Server too, so that it reloads its certificates.
func (s *Service[C]) AddTLS(addr string, cfg *gtls.Config) {
	if cfg == nil {
		panic("l4: AddTLS with a nil *tls.Config")
	}
	s.add(endpoint{network: "tcp", address: addr, tls: cfg})
}

// AddTLSPassthrough adds a TCP endpoint whose clients speak TLS that the service does
// not terminate: after ConnectionFilter it reads the client's ClientHello without
// consuming it (at most 16 KiB and one record header, within
// [ServiceOptions.TLSHandshakeTimeout]) and puts its server name and ALPN list in the
// Session ([Session.ServerName], [Session.ALPN]) for UpstreamPeer to route on; the peer
// then gets every byte the client sent, the hello included, untouched, and does the
// handshake itself. A connection whose first bytes are not a TLS ClientHello ends with
// an error wrapping [ErrNotTLSHello].
func (s *Service[C]) AddTLSPassthrough(addr string) {
	s.add(endpoint{network: "tcp", address: addr, passthrough: true})
}

func (s *Service[C]) add(e endpoint) {
	s.mu.Lock()
	s.endpoints = append(s.endpoints, e)
	s.mu.Unlock()
}

// Endpoints returns the endpoints added with AddTCP, AddUnix, AddTLS and
// AddTLSPassthrough, in order, as addresses whose Network is "tcp" or "unix". Each also
// has a method TLS() bool that reports whether the service terminates TLS on it.
func (s *Service[C]) Endpoints() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.endpoints...)
}

// ListenAndServe listens on the service's endpoints and serves until Shutdown or Close.
// Use it to run a service without a server.Server.
func (s *Service[C]) ListenAndServe() error {
	eps := s.Endpoints()
	lns := make([]net.Listener, 0, len(eps))
	for _, ep := range eps {
		// No TCP keep-alive probes: the service's idle timeout ends dead connections.
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), ep.Network(), ep.String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("l4: listen %s %s: %w", ep.Network(), ep.String(), err)
		}
		lns = append(lns, ln)
	}
	return s.Serve(lns)
}

// Serve accepts on lns (one per endpoint, in the order they were added) and serves
// until Shutdown or Close, then returns nil once every connection has ended. Serve
// owns the listeners and closes them when the service stops accepting. An Accept that
// fails is retried after a backoff, unless the listener is closed.
func (s *Service[C]) Serve(lns []net.Listener) error {
	if len(lns) == 0 {
		return errors.New("l4: Serve needs at least one listener")
	}
	eps := s.Endpoints()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		return nil
	}
	poll := newPoller(s.opts.IdleTimeout)
	if poll != nil {
		s.poll = poll
		s.copyCfg.poll = poll
		go poll.Run()
		defer poll.Close() // after every connection ended (below)
	}
	for i, ln := range lns {
		var e endpoint
		if i < len(eps) {
			e, _ = eps[i].(endpoint)
		}
		if len(s.opts.ProxyProtocol.Trusted) > 0 && ln.Addr().Network() != "unix" {
			// (Valid options: NewService checked them.)
			ppl, err := proxyproto.NewListener(ln, s.opts.ppOptions())
			if err == nil {
				ln = ppl
			}
		}
		s.lns = append(s.lns, ln)
		s.accepts.Add(1)
		go s.acceptLoop(ln, e)
	}
	s.mu.Unlock()
	<-s.stop
	s.accepts.Wait()
	s.active.Wait()
	s.copyCfg.gos.Stop()
	return nil
}

// maxIdleGoroutines is the most goroutines a service keeps idle for its next
// connections (see gopool): enough for the churn of many short connections at once,
// few enough that they weigh nothing beside the connections it holds.
func maxIdleGoroutines() int { return max(64, 16*runtime.GOMAXPROCS(0)) }

func (s *Service[C]) acceptLoop(ln net.Listener, ep endpoint) {
	defer s.accepts.Done()
	var backoff acceptretry.Backoff
	for {
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.stop:
				return
			}
		}
		nc, err := ln.Accept()
		if err != nil {
			s.release()
			select {
			case <-s.stop:
				return
			default:
			}
			if !backoff.Retry(err, ln, s.log, "l4: ", s.stop) {
				return
			}
			continue
		}
		backoff.Reset()
		c := &conn[C]{svc: s, client: nc, ep: &ep}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			s.release()
			return
		}
		c.slot = int32(len(s.conns))
		s.conns = append(s.conns, c)
		s.active.Add(1)
		s.mu.Unlock()
		s.copyCfg.gos.Go(c.serve)
	}
}

func (s *Service[C]) release() {
	if s.slots != nil {
		<-s.slots
	}
}

func (s *Service[C]) done(c *conn[C]) {
	s.mu.Lock()
	last := s.conns[len(s.conns)-1]
	s.conns[c.slot], last.slot = last, c.slot
	s.conns[len(s.conns)-1] = nil
	s.conns = s.conns[:len(s.conns)-1]
	if cap(s.conns) > 1024 && len(s.conns) < cap(s.conns)/4 {
		s.conns = slices.Clone(s.conns) // (a burst's room, given back)
	}
	s.mu.Unlock()
	s.release()
	s.active.Done()
}

// stopAccepting closes the listeners; connections go on.
func (s *Service[C]) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing = true
	close(s.stop)
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Shutdown stops accepting and waits for the connections being served to end by
// themselves (both sides closed, or a timeout). When ctx ends first it cuts the
// remaining ones as Close does (their Logging sees [ErrShutdown]) and returns
// ctx.Err().
func (s *Service[C]) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	idle := make(chan struct{})
	go func() {
		s.active.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.Close()
		<-idle
		return ctx.Err()
	}
}

// Close stops accepting and cuts every connection at once; their Logging sees
// [ErrShutdown]. It does not wait for the phases of those connections to return: Serve
// does.
func (s *Service[C]) Close() error {
	s.stopAccepting()
	s.cancel()
	s.cutAll()
	return nil
}

// CloseStreams cuts every connection being served, as Close does, without closing the
// listeners: a server.Server calls it once a graceful shutdown's grace period has
// passed, since every TCP connection is a long-lived stream whose end the service
// cannot negotiate.
func (s *Service[C]) CloseStreams() { s.cutAll() }

func (s *Service[C]) cutAll() {
	s.mu.Lock()
	cs := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range cs {
		c.abort(ErrShutdown)
	}
}
