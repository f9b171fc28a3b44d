// Command udp-dns is a DNS proxy over UDP in front of resolvers: each client address
// gets a session that round robin sends to the next resolver, and keeps it until the
// session has been idle for -idle. An access log line per session goes to standard
// error.
//
//	go run ./examples/udp-dns -listen 127.0.0.1:5353 -upstream 1.1.1.1:53,9.9.9.9:53
//	dig @127.0.0.1 -p 5353 example.com
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
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/l4"
	"github.com/gotthard-proxy/gotthard/lb"
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
	err := run(context.Background(), os.Args[1:], os.Stderr, true, func(addrs []netip.AddrPort, upstreams []string) {
		fmt.Printf("udp-dns: serving DNS on %v, round robin per client over %s\n", addrs, strings.Join(upstreams, ", "))
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
// SIGINT). ready, if not nil, is called once the UDP sockets are bound.
func run(ctx context.Context, args []string, logOut io.Writer, signals bool, ready func([]netip.AddrPort, []string)) error {
	fs := flag.NewFlagSet("udp-dns", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5353", "UDP address to serve DNS on")
	upstream := fs.String("upstream", "", "resolvers, HOST:PORT,HOST:PORT,... (required)")
	idle := fs.Duration("idle", 30*time.Second, "idle time that ends a client's session")
	maxSessions := fs.Int("max-sessions", 10000, "sessions open at once, at most")
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
	svc, err := l4.NewUDPService("udp-dns", &resolvers{lb: bal, log: logger}, l4.UDPOptions{
		Listen:      []string{*listen},
		IdleTimeout: *idle,
		MaxSessions: *maxSessions,
		MaxDatagram: 4096, // EDNS(0) answers up to 4 KiB
		Logger:      logger,
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
	if ready == nil {
		return srv.RunContext(ctx)
	}
	told := make(chan struct{})
	go func() {
		defer close(told)
		select {
		case <-svc.Ready():
			ready(svc.Addrs(), ups)
		case <-srv.Done():
		}
	}()
	err = srv.RunContext(ctx)
	<-told
	return err
}
