// Command udp-dns is a DNS proxy over UDP in front of resolvers: each client address
// gets a session that round robin sends to the next resolver, and keeps it until the
// session has been idle for -idle. An access log line per session goes to standard
// error.
//
//	go run ./examples/udp-dns -listen 127.0.0.1:5353 -upstream 1.1.1.1:53,9.9.9.9:53
//	dig @127.0.0.1 -p 5353 example.com
//
// With -admin ADDR it also serves Prometheus metrics (/metrics: sessions open, counted
// as connections, bytes each way, the resolvers' health) and the live status page (/).
//
// It takes the server's flags too (-c, -d, -u, -t); SIGTERM or Ctrl-C stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
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

// resolvers sends each session to the next resolver of the balancer and logs each
// session when it ends.
type resolvers struct {
	l4.UDPPhases[*sessCtx]
	lb  *lb.LoadBalancer[struct{}]
	log *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ l4.ProxyUDP[*sessCtx] = (*resolvers)(nil)

// sessCtx is the per-session state: the balancer's choice, released in Logging.
type sessCtx struct {
	pick lb.Pick[struct{}]
}

func (r *resolvers) NewCtx() *sessCtx { return &sessCtx{} }

func (r *resolvers) UpstreamPeer(_ context.Context, _ *l4.UDPSession, c *sessCtx) (string, error) {
	pick, err := r.lb.Select("", nil)
	if err != nil {
		return "", err
	}
	c.pick = pick
	return pick.Addr(), nil
}

func (r *resolvers) Logging(_ context.Context, s *l4.UDPSession, c *sessCtx, err error) {
	// A resolver that answered with ICMP port unreachable counts as a failure, which
	// outlier detection may eject; a session that idled out or was shut down did well.
	outcome := lb.Success
	if errors.Is(err, l4.ErrUDPUpstream) {
		outcome = lb.ConnectFailure
	}
	c.pick.Done(outcome)
	n := s.Counts()
	r.log.Info("session", "client", s.Client(), "upstream", s.Upstream(),
		"queries", n.DatagramsUp, "answers", n.DatagramsDown, "bytes_in", n.BytesUp, "bytes_out", n.BytesDown,
		"duration", s.Duration().Round(time.Millisecond), "end", err)
}

func main() {
	err := run(context.Background(), os.Args[1:], os.Stderr, true, func(addrs []netip.AddrPort, upstreams []string, adminAddrs []net.Addr) {
		fmt.Printf("udp-dns: serving DNS on %v, round robin per client over %s\n", addrs, strings.Join(upstreams, ", "))
		for _, a := range adminAddrs {
			fmt.Printf("udp-dns: metrics at http://%s/metrics, the status page at http://%s/\n", a, a)
		}
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "udp-dns:", err)
		os.Exit(1)
	}
}

// run parses args and serves until ctx ends (or, with signals, until SIGTERM or
// SIGINT). ready, if not nil, is called once the UDP sockets are bound, with their
// addresses, the resolvers and the admin service's addresses (none without -admin).
func run(ctx context.Context, args []string, logOut io.Writer, signals bool, ready func([]netip.AddrPort, []string, []net.Addr)) error {
	fs := flag.NewFlagSet("udp-dns", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5353", "UDP address to serve DNS on")
	upstream := fs.String("upstream", "", "resolvers, HOST:PORT,HOST:PORT,... (required)")
	idle := fs.Duration("idle", 30*time.Second, "idle time that ends a client's session")
	maxSessions := fs.Int("max-sessions", 10000, "sessions open at once, at most")
	adminAddr := fs.String("admin", "", "address of the admin service: /metrics (Prometheus), /healthz, /status.json and the live status page at / (empty: none)")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var backends []lb.Backend
	var ups []string
	for u := range strings.SplitSeq(*upstream, ",") {
		if u = strings.TrimSpace(u); u != "" {
			backends = append(backends, lb.Backend{Addr: u})
			ups = append(ups, u)
		}
	}
	if len(backends) == 0 {
		return errors.New("-upstream: no resolver given")
	}
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	bal, err := lb.New(lb.Options[struct{}]{Name: "resolvers", Algorithm: lb.RoundRobin, Backends: backends, Logger: logger})
	if err != nil {
		return err
	}
	var metrics *prometheus.Metrics
	var stats *admin.Stats
	var observers []observe.ConnObserver
	if *adminAddr != "" {
		if metrics, err = prometheus.New(prometheus.Options{Logger: logger}); err != nil {
			return err
		}
		if err := metrics.AddBalancer(bal); err != nil {
			return err
		}
		stats = admin.NewStats()
		observers = []observe.ConnObserver{metrics, stats}
	}
	svc, err := l4.NewUDPService("udp-dns", &resolvers{lb: bal, log: logger}, l4.UDPOptions{
		Listen:      []string{*listen},
		IdleTimeout: *idle,
		MaxSessions: *maxSessions,
		MaxDatagram: 4096, // EDNS(0) answers up to 4 KiB
		Logger:      logger,
		Observers:   observers,
	})
	if err != nil {
		return err
	}
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger, NoSignals: !signals})
	if err != nil {
		return err
	}
	if err := srv.Add(svc); err != nil {
		return err
	}
	if *adminAddr != "" {
		a, err := admin.New(admin.Options{Addr: *adminAddr, Stats: stats, Metrics: metrics.Handler(),
			Balancers: []observe.Balancer{bal}, Logger: logger})
		if err != nil {
			return fmt.Errorf("-admin: %w", err)
		}
		if err := srv.Add(a); err != nil {
			return err
		}
	}
	if ready == nil {
		return srv.RunContext(ctx)
	}
	told := make(chan struct{})
	go func() {
		defer close(told)
		select {
		case <-svc.Ready():
			var adminAddrs []net.Addr
			if *adminAddr != "" {
				select { // (the UDP sockets may be bound before the admin listens)
				case <-srv.Ready():
					adminAddrs = srv.Addrs("admin")
				case <-srv.Done():
				}
			}
			ready(svc.Addrs(), ups, adminAddrs)
		case <-srv.Done():
		}
	}()
	err = srv.RunContext(ctx)
	<-told
	return err
}
