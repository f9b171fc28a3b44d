// Command tcp-proxy forwards TCP connections to one or more upstreams, balanced round
// robin; an upstream that refuses connections is skipped for the connection (a retry
// goes to another) and ejected for a while after repeated failures.
//
//	go run ./examples/tcp-proxy -listen 127.0.0.1:6380 -upstream 127.0.0.1:6379
//	go run ./examples/tcp-proxy -listen :5433 -upstream db1:5432,db2:5432 -idle 1h
//
// With -sni-listen and -sni it also routes TLS connections by the server name their
// ClientHello asks for, without terminating TLS: each backend does its own handshake.
//
//	go run ./examples/tcp-proxy -upstream 127.0.0.1:6379 \
//	    -sni-listen 127.0.0.1:8443 -sni a.example=127.0.0.1:9443,b.example=127.0.0.1:9444
//
// With -admin it also serves Prometheus metrics (/metrics: client connections open,
// upstream connections made and failed, connect times, the backends' health) and the
// live status page (/) on that address:
//
//	go run ./examples/tcp-proxy -upstream 127.0.0.1:6379 -admin 127.0.0.1:6199
//
// It runs under a server.Server, so SIGTERM drains connections (up to the grace
// period) and SIGINT cuts them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/l4"
	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/server"
)

// forwarder picks an upstream for each connection from the balancer and reports each
// attempt's outcome to it: connect failures count towards ejection, a connection made
// counts as a success.
type forwarder struct {
	l4.Phases[*connCtx]
	lb     *lb.LoadBalancer[*l4.Peer]
	routes map[string]*l4.Peer // by server name, for the -sni-listen endpoint
	log    *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ l4.ProxyTCP[*connCtx] = (*forwarder)(nil)

// connCtx is the per-connection state: the upstreams tried and the current attempt.
// It lives as long as the connection, idle or not, so what only connecting needs (the
// upstreams tried, 72 bytes) is dropped once connected.
type connCtx struct {
	tried *lb.Attempts[*l4.Peer] // until connected
	pick  lb.Pick[*l4.Peer]
	sni   bool // routed by server name, not by the balancer
}

func (f *forwarder) NewCtx() *connCtx { return &connCtx{} }

func (f *forwarder) UpstreamPeer(_ context.Context, s *l4.Session, c *connCtx) (*l4.Peer, error) {
	if name := s.ServerName(); name != "" {
		// A TLS connection on the -sni-listen endpoint: its backend by name.
		p, ok := f.routes[name]
		if !ok {
			return nil, fmt.Errorf("no backend for server name %q", name)
		}
		c.sni = true
		return p, nil
	}
	if c.tried == nil {
		c.tried = new(lb.Attempts[*l4.Peer])
	}
	p, err := f.lb.Select("", c.tried) // skips upstreams this connection tried
	if err != nil {
		return nil, err
	}
	c.pick = p
	return p.Value(), nil
}

func (f *forwarder) FailToConnect(_ context.Context, _ *l4.Session, c *connCtx, _ *l4.Peer, err *l4.ConnectError) *l4.ConnectError {
	if c.sni {
		return err // one backend per name: nothing to retry on
	}
	c.pick.Done(lb.ConnectFailure)
	// Nothing was sent: another upstream is safe to try, while one is left and the
	// balancer's retry budget allows it.
	err.Retry = c.tried.Len() < len(f.lb.Targets()) && f.lb.RetryBudget().Retry()
	return err
}

func (f *forwarder) Connected(_ context.Context, _ *l4.Session, c *connCtx, _ *l4.Peer, _ net.Conn) error {
	if !c.sni {
		c.pick.Done(lb.Success)
	}
	c.tried = nil
	return nil
}

func (f *forwarder) Logging(ctx context.Context, s *l4.Session, c *connCtx, err error) {
	if !c.sni {
		c.pick.Done(lb.Canceled) // an attempt no phase reported
	}
	if !f.log.Enabled(ctx, slog.LevelDebug) {
		return // (the line's attributes cost more than the rest of this phase)
	}
	upstream := ""
	if p := s.Peer(); p != nil {
		upstream = p.Address
	}
	f.log.Debug("connection", "client", s.ClientAddr().String(), "upstream", upstream,
		"to_upstream", s.BytesToUpstream(), "to_client", s.BytesToClient(),
		"server_name", s.ServerName(), "duration", s.Duration(), "attempts", s.Attempts(), "err", err)
}

func main() {
	err := run(context.Background(), os.Args[1:], os.Stderr, func(addrs []net.Addr) {
		for _, a := range addrs {
			fmt.Fprintf(os.Stderr, "tcp-proxy listening on %s\n", a)
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run serves until ctx ends or a signal stops the server; ready gets the bound
// addresses once it accepts: the proxy's, then the admin service's, if any.
func run(ctx context.Context, args []string, logOut io.Writer, ready func([]net.Addr)) error {
	fs := flag.NewFlagSet("tcp-proxy", flag.ContinueOnError)
	fs.SetOutput(logOut)
	listen := fs.String("listen", "127.0.0.1:6380", "address to listen on (host:port)")
	upstreams := fs.String("upstream", "", "upstream host:port, or several separated by commas")
	idle := fs.Duration("idle", 5*time.Minute, "close connections idle for this long")
	maxConns := fs.Int("max-conns", 10000, "connections served at once; more wait to be accepted")
	verbose := fs.Bool("v", false, "log every connection")
	adminAddr := fs.String("admin", "", "address of the admin service: /metrics (Prometheus), /healthz, /status.json and the live status page at / (empty: none)")
	sniListen := fs.String("sni-listen", "", "also accept TLS connections here and route them by server name (-sni), without terminating TLS")
	sniRoutes := fs.String("sni", "", "NAME=HOST:PORT[,NAME=HOST:PORT...]: the backend of each server name on -sni-listen")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstreams == "" {
		return errors.New("tcp-proxy: -upstream is required")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	var backends []lb.Backend
	for _, u := range strings.Split(*upstreams, ",") {
		backends = append(backends, lb.Backend{Addr: strings.TrimSpace(u)})
	}
	balancer, err := lb.New(lb.Options[*l4.Peer]{
		Backends: backends,
		Attach:   func(b lb.Backend) *l4.Peer { return &l4.Peer{Address: b.Addr} },
		Outlier:  lb.OutlierOptions{ConsecutiveFailures: 3},
		Logger:   logger,
	})
	if err != nil {
		return err
	}
	for _, t := range balancer.Targets() {
		if err := t.Value().Validate(); err != nil {
			return err
		}
	}
	routes := map[string]*l4.Peer{}
	if (*sniListen == "") != (*sniRoutes == "") {
		return errors.New("tcp-proxy: -sni-listen and -sni go together")
	}
	if *sniRoutes != "" {
		for _, r := range strings.Split(*sniRoutes, ",") {
			name, addr, ok := strings.Cut(strings.TrimSpace(r), "=")
			if !ok || name == "" {
				return fmt.Errorf("tcp-proxy: -sni %q: want NAME=HOST:PORT", r)
			}
			p := &l4.Peer{Address: addr}
			if err := p.Validate(); err != nil {
				return fmt.Errorf("tcp-proxy: -sni %q: %w", r, err)
			}
			routes[strings.ToLower(name)] = p
		}
	}
	var metrics *prometheus.Metrics
	var stats *admin.Stats
	var observers []observe.ConnObserver
	if *adminAddr != "" {
		if metrics, err = prometheus.New(prometheus.Options{Logger: logger}); err != nil {
			return err
		}
		if err := metrics.AddBalancer(balancer); err != nil {
			return err
		}
		stats = admin.NewStats()
		observers = []observe.ConnObserver{metrics, stats}
	}
	svc, err := l4.NewService("tcp-proxy", &forwarder{lb: balancer, routes: routes, log: logger}, l4.ServiceOptions{
		Logger:      logger,
		IdleTimeout: *idle,
		MaxConns:    *maxConns,
		Observers:   observers,
	})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if *sniListen != "" {
		svc.AddTLSPassthrough(*sniListen)
	}
	srv, err := server.New(server.Options{Logger: logger, Listen: listenNoKeepAlive})
	if err != nil {
		return err
	}
	if err := srv.Add(svc); err != nil {
		return err
	}
	if *adminAddr != "" {
		a, err := admin.New(admin.Options{
			Addr:      *adminAddr,
			Stats:     stats,
			Metrics:   metrics.Handler(),
			Balancers: []observe.Balancer{balancer},
			Listeners: admin.ListenersOf(srv.Addrs, "tcp-proxy"),
			Logger:    logger,
		})
		if err != nil {
			return fmt.Errorf("-admin: %w", err)
		}
		if err := srv.Add(a); err != nil {
			return err
		}
	}
	go func() {
		select {
		case <-srv.Ready():
			addrs := srv.Addrs("tcp-proxy")
			if *adminAddr != "" {
				addrs = append(addrs, srv.Addrs("admin")...)
			}
			ready(addrs)
		case <-srv.Done():
		}
	}()
	return srv.RunContext(ctx)
}

// listenNoKeepAlive creates the listeners without TCP keep-alive probes on the connections they
// accept (the Go default turns them on, for four setsockopt calls per connection): the
// service's idle timeout ends dead connections.
func listenNoKeepAlive(ep server.Endpoint) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), ep.Network, ep.Address)
}
