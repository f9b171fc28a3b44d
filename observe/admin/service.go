package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/acceptretry"
	"github.com/gotthard-proxy/gotthard/observe"
)

// DefaultAddr is the address the admin service listens on when Options.Addr is empty.
const DefaultAddr = "127.0.0.1:6199"

// ErrNotLoopback is wrapped by the error of [New] for an Options.Addr that is not a
// loopback address while Options.Token is empty.
var ErrNotLoopback = errors.New("admin: a non-loopback address needs Options.Token")

// Options configures the admin [Service]. The zero value serves /healthz and an empty
// status on [DefaultAddr].
type Options struct {
	// Name is the service's name in a server.Server. If empty, "admin".
	Name string
	// Addr is the TCP address to listen on, host:port. If empty, [DefaultAddr]. A host
	// that is not a loopback address (127.0.0.0/8, ::1, "localhost"), including an
	// empty one (":6199", every interface), needs a Token.
	Addr string
	// Token, if not empty, is the bearer token every route but /healthz and the status
	// page's static files requires: "Authorization: Bearer TOKEN", compared in constant
	// time; other requests get 401 with a WWW-Authenticate field.
	Token string
	// Stats gives the services' counters, rates and latencies. If nil, /status.json
	// lists only the services of Listeners, without numbers.
	Stats *Stats
	// Metrics, if not nil, serves /metrics (a Prometheus handler, say); if nil,
	// /metrics is 404.
	Metrics http.Handler
	// Balancers are listed with their backends' state. The service keeps a copy of the
	// slice; a nil element is refused.
	Balancers []observe.Balancer
	// Certificates are listed with their names, issuer and expiry, never their keys.
	Certificates []CertificateSource
	// Listeners, if not nil, returns each service's listening addresses by service
	// name, on each /status.json request; it must be safe for concurrent use. A
	// gateway builds it from server.Server.Addrs.
	Listeners func() map[string][]string
	// Version is the program's version as /status.json shows it. If empty, the main
	// module's version from the build information.
	Version string
	// ReadHeaderTimeout, WriteTimeout and IdleTimeout are the http.Server's. If zero,
	// 5s, 30s and 60s. The whole request (with its body) must arrive within
	// ReadHeaderTimeout too.
	ReadHeaderTimeout, WriteTimeout, IdleTimeout time.Duration
	// Logger receives the HTTP server's errors (at Warn). If nil, slog.Default().
	Logger *slog.Logger
}

// Service is the admin service: an HTTP server, on a listener of its own, of
// /healthz, /metrics, /status.json and the live status page at /. It is a
// server.ListeningService by its method set: add it to the program's server.Server
// beside the proxy services, or run it alone with [Service.Serve].
//
// Its methods are safe for concurrent use.
type Service struct {
	opts    Options // immutable copy
	name    string
	addr    string
	start   time.Time
	version Version
	token   [32]byte // SHA-256 of Options.Token, when set
	handler http.Handler
	srv     *http.Server
	log     *slog.Logger

	mu     sync.Mutex
	served bool
}

// New validates opts and returns the admin service. It fails for an address that does
// not parse, or that is not loopback while Options.Token is empty ([ErrNotLoopback]),
// and for a nil balancer or certificate function.
func New(opts Options) (*Service, error) {
	if opts.Name == "" {
		opts.Name = "admin"
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: Options.Addr %q: %w", opts.Addr, err)
	}
	if !isLoopback(host) && opts.Token == "" {
		return nil, fmt.Errorf("admin: Options.Addr %q is not a loopback address, so anyone who reaches it could read the status and metrics: set Options.Token to require a bearer token, or listen on 127.0.0.1 (%w)", opts.Addr, ErrNotLoopback)
	}
	if strings.ContainsAny(opts.Token, " \t\r\n") {
		return nil, errors.New("admin: Options.Token must not contain white space")
	}
	for i, b := range opts.Balancers {
		if b == nil {
			return nil, fmt.Errorf("admin: Options.Balancers[%d] is nil", i)
		}
	}
	for i, c := range opts.Certificates {
		if c.Certificates == nil {
			return nil, fmt.Errorf("admin: Options.Certificates[%d] (%q) has a nil Certificates function", i, c.Name)
		}
	}
	opts.Balancers = slices.Clone(opts.Balancers)
	opts.Certificates = slices.Clone(opts.Certificates)
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 5 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		opts:    opts,
		name:    opts.Name,
		addr:    opts.Addr,
		start:   time.Now(),
		version: readVersion(opts.Version),
		log:     log,
	}
	if opts.Stats != nil {
		s.start = opts.Stats.start
	}
	if opts.Token != "" {
		s.token = hashToken(opts.Token)
	}
	s.handler = s.routes()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadHeaderTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// ListenersOf adapts a function that lists a service's bound addresses by name (a
// server.Server's Addrs method) to Options.Listeners, for the named services:
//
//	Listeners: admin.ListenersOf(srv.Addrs, "gateway", "gateway-tls"),
func ListenersOf(addrs func(name string) []net.Addr, names ...string) func() map[string][]string {
	names = slices.Clone(names)
	return func() map[string][]string {
		m := make(map[string][]string, len(names))
		for _, name := range names {
			as := addrs(name)
			list := make([]string, 0, len(as))
			for _, a := range as {
				list = append(list, a.String())
			}
			m[name] = list
		}
		return m
	}
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Name returns the service's name (Options.Name).
func (s *Service) Name() string { return s.name }

// Endpoints returns the one TCP address to listen on (Options.Addr).
func (s *Service) Endpoints() []net.Addr { return []net.Addr{tcpAddr(s.addr)} }

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// Handler returns the service's routes, to mount on a server of the caller's own
// instead of Serve (the token check included).
func (s *Service) Handler() http.Handler { return s.handler }

// Serve serves on lns until Shutdown or Close, then returns nil. It closes the
// listeners when it returns. It may be called once. An accept that fails (for want of
// descriptors or kernel memory) is logged and retried after a backoff: it does not end
// Serve.
func (s *Service) Serve(lns []net.Listener) error {
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		for _, ln := range lns {
			ln.Close()
		}
		return errors.New("admin: Serve called twice")
	}
	s.served = true
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("admin: Serve: no listener")
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		// (net/http's loop would end, and the server with it, on an accept that failed
		// for want of descriptors or kernel memory: those are retried.)
		ln := acceptretry.Listener(ln, s.log, "admin")
		go func() { errc <- s.srv.Serve(ln) }()
	}
	var first error
	for range lns {
		err := <-errc
		if errors.Is(err, http.ErrServerClosed) {
			continue
		}
		if first == nil {
			first = fmt.Errorf("admin: serve: %w", err)
			s.srv.Close() // the others stop too
		}
	}
	return first
}

// Shutdown stops accepting, lets requests in progress finish and closes idle
// connections; if ctx ends first it closes the rest and returns ctx.Err().
func (s *Service) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return err
	}
	return nil
}

// Close closes the listeners and every connection at once.
func (s *Service) Close() error { return s.srv.Close() }
