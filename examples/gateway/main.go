// Command gateway is a reverse proxy built on Gotthard.
//
// With no arguments it starts a demo origin on loopback and the proxy in front of it on
// 127.0.0.1:6188, and prints a curl line to try. With -listen and -upstream it proxies to
// your own origin, or balances over several:
//
//	go run ./examples/gateway
//	go run ./examples/gateway -listen 0.0.0.0:8080 -upstream 127.0.0.1:9000
//	go run ./examples/gateway -upstream 10.0.0.1:80,10.0.0.2:80 -lb ewma -health-check /healthz
//
// With -tls-listen, -cert and -key it also serves HTTPS (HTTP/2 or HTTP/1.1 by ALPN) on a
// second address, reloading the certificate files when they change and on SIGHUP:
//
//	go run ./examples/gateway -tls-listen 127.0.0.1:6443 -cert site.pem -key site.key
//
// In front of gRPC servers (-upstream-proto h2c or h2), -grpc-web also lets browsers
// call them with gRPC-web:
//
//	go run ./examples/gateway -upstream 127.0.0.1:50051 -upstream-proto h2c -grpc-web
//
// With -grpc-upstream, gRPC calls (a content-type starting with application/grpc) go to
// a second upstream over HTTP/2 in clear text, and every other request to -upstream:
//
//	go run ./examples/gateway -upstream 127.0.0.1:9000 -grpc-upstream 127.0.0.1:50051
//
// It also takes the server flags (-c conf.yaml, -d, -u, -t). -unix PATH accepts clients
// on a Unix socket as well.
//
// It upgrades without refusing a connection (docs/upgrade.md), in either mode:
//
//	gateway -c gw.yaml &                # gw.yaml: upgrade_sock, pid_file, grace_period_seconds
//	gateway -c gw.yaml -u &             # the new binary waits on upgrade_sock...
//	kill -QUIT "$(cat /run/gw.pid)"     # ...and takes the listeners; the old one drains
//
//	kill -USR2 "$(cat /run/gw.pid)"     # or: the process re-executes its binary itself
//
// With -ticket-key-file the TLS session ticket keys come from a file both processes
// read, so clients resume their TLS sessions on the new process.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/gotthard-proxy/gotthard/examples/internal/demo"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/admin"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// gateway proxies every request to one upstream.
type gateway struct {
	proxy.Phases[struct{}]
	peer     *proxy.Peer
	grpcPeer *proxy.Peer // nil: gRPC calls go to peer too
	grpcWeb  bool        // bridge gRPC-web calls to the upstream's gRPC
	cache    gwCache     // -cache
}

// Compile-time checks that the proxy types implement ProxyHTTP: a phase with a wrong
// signature fails here with the method named.
var (
	_ proxy.ProxyHTTP[struct{}]     = (*gateway)(nil)
	_ proxy.ProxyHTTP[*balancedCtx] = (*balanced)(nil)
)

func (g *gateway) NewCtx() struct{} { return struct{}{} }

// EarlyRequestFilter turns the gRPC-web bridge on for gRPC-web calls with -grpc-web.
func (g *gateway) EarlyRequestFilter(_ context.Context, s *proxy.Session, _ struct{}) error {
	if g.grpcWeb {
		s.BridgeGRPCWeb() // false, and nothing done, for anything but a gRPC-web call
	}
	return nil
}

// UpstreamPeer returns the one peer, or the gRPC peer for a gRPC call with
// -grpc-upstream; each is made once and shared by every request.
func (g *gateway) UpstreamPeer(_ context.Context, s *proxy.Session, _ struct{}) (*proxy.Peer, error) {
	if g.grpcPeer != nil && isGRPC(s.Request().Header.Get("Content-Type")) {
		return g.grpcPeer, nil
	}
	return g.peer, nil
}

// isGRPC reports whether contentType is gRPC's (application/grpc, application/grpc+proto,
// application/grpc-web, ...); media types are case-insensitive (RFC 9110, 8.3.1).
func isGRPC(contentType string) bool {
	const prefix = "application/grpc"
	return len(contentType) >= len(prefix) && strings.EqualFold(contentType[:len(prefix)], prefix)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6188", "address to accept clients on")
	upstream := fs.String("upstream", "", "origin HOST:PORT to proxy to, or several separated by commas to balance over (empty: start a demo origin)")
	algo := fs.String("lb", "round-robin", "balancing algorithm with several upstreams: round-robin, random, least-conn, ewma, ketama, maglev")
	hashKey := fs.String("hash-key", "", "what ketama and maglev hash: path, client-ip, header:NAME or cookie:NAME")
	healthCheck := fs.String("health-check", "", "HTTP path to check each upstream on every 2s (empty: no active check)")
	maxRetries := fs.Int("max-retries", 0, "retries on another connection attempt (0: the default, 3)")
	connectTimeout := fs.Duration("connect-timeout", 0, "upstream connect timeout (0: 10s)")
	readTimeout := fs.Duration("read-timeout", 0, "upstream read timeout (0: 60s)")
	tlsListen := fs.String("tls-listen", "", "address to accept TLS clients on (needs -cert and -key)")
	certFile := fs.String("cert", "", "PEM certificate chain file for -tls-listen")
	keyFile := fs.String("key", "", "PEM private key file for -tls-listen")
	ticketKeys := fs.String("ticket-key-file", "", "file of TLS session ticket keys for -tls-listen, shared across graceful upgrades so clients resume their sessions (see docs/upgrade.md)")
	unixListen := fs.String("unix", "", "path of a Unix socket to accept clients on as well")
	upstreamProto := fs.String("upstream-proto", "h1", "protocol to the upstream: h1 (HTTP/1.1), h2c (HTTP/2 in clear text), h2 (HTTP/2 over TLS)")
	upstreamTLS := fs.Bool("upstream-tls", false, "use TLS to the upstream (implied by -upstream-proto h2)")
	upstreamCA := fs.String("upstream-ca", "", "PEM file of the CAs that verify the upstream's certificate (empty: the system roots)")
	upstreamSNI := fs.String("upstream-sni", "", "server name sent to and verified on the upstream (empty: its host)")
	skipVerify := fs.Bool("upstream-skip-verify-dangerous", false, "do not verify the upstream's certificate (for tests only: anyone can impersonate it)")
	grpcWeb := fs.Bool("grpc-web", false, "bridge gRPC-web calls (application/grpc-web, application/grpc-web-text) to gRPC upstreams (needs -upstream-proto h2c or h2, or -grpc-upstream)")
	grpcUpstream := fs.String("grpc-upstream", "", "gRPC server HOST:PORT, over HTTP/2 in clear text, that gets the requests whose content-type starts with application/grpc (the others go to -upstream; one -upstream only)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until the gateway stops (for profile-guided builds: docs/performance.md)")
	oflags := addObsFlags(fs)
	cflags := addCacheFlags(fs)
	pflags := addPPFlags(fs)
	mflags := addModFlags(fs)
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *grpcWeb && *upstreamProto != "h2c" && *upstreamProto != "h2" && *grpcUpstream == "" {
		// The bridge makes gRPC calls of them, and gRPC is HTTP/2.
		return fmt.Errorf("-grpc-web needs -upstream-proto h2c or h2, or -grpc-upstream, not -upstream-proto %q", *upstreamProto)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	target := *upstream
	demoMode := target == ""
	if demoMode {
		origin, err := demo.Start("Gotthard")
		if err != nil {
			return err
		}
		defer origin.Close()
		target = origin.Addr()
		oflags.accessLog = cmp.Or(oflags.accessLog, "combined")
		if oflags.admin == "" {
			oflags.admin = demoAdminAddr()
		}
	}
	if oflags.adminToken != "" && oflags.admin == "" {
		return errors.New("-admin-token needs -admin")
	}
	gwc, err := cflags.build()
	if err != nil {
		return err
	}
	if gwc != nil {
		if st, ok := gwc.Storage().(interface{ Close() error }); ok {
			defer st.Close()
		}
	}
	obs, err := newObservability(oflags, logger)
	if err != nil {
		return err
	}
	defer obs.shutdown(context.Background()) // writes the spans still batched
	peerOpts := proxy.PeerOptions{ConnectTimeout: *connectTimeout, ReadTimeout: *readTimeout}
	mkPeer, err := peerMaker(*upstreamProto, *upstreamTLS, *upstreamCA, *upstreamSNI, *skipVerify, peerOpts)
	if err != nil {
		return err
	}
	ppOpts, err := pflags.options()
	if err != nil {
		return err
	}
	ppVersion, err := pflags.peerVersion()
	if err != nil {
		return err
	}
	if ppVersion != 0 {
		mk := mkPeer
		mkPeer = func(addr string) *proxy.Peer {
			p := mk(addr)
			p.ProxyProtocol = ppVersion
			return p
		}
	}
	mods, err := mflags.modules(logger)
	if err != nil {
		return err
	}
	cfg := srv.Config()
	svcOpts := proxy.ServiceOptions{
		Modules:                   mods,
		Logger:                    logger,
		MaxRetries:                firstNonZero(*maxRetries, cfg.MaxRetries),
		UpstreamKeepalivePoolSize: cfg.UpstreamKeepalivePoolSize,
		Observers:                 obs.observers,
		ProxyProtocol:             ppOpts,
	}
	var balancers []observe.Balancer
	var svc interface {
		server.ListeningService
		AddTCP(string)
		AddUnix(string)
		AddTLS(string, *gtls.Config)
	}
	upstreams := strings.Split(target, ",")
	lbFlags := false
	fs.Visit(func(f *flag.Flag) {
		lbFlags = lbFlags || f.Name == "lb" || f.Name == "hash-key" || f.Name == "health-check"
	})
	if len(upstreams) > 1 || lbFlags {
		if *grpcUpstream != "" {
			return errors.New("-grpc-upstream works with one -upstream, without -lb, -hash-key or -health-check")
		}
		b, err := newBalanced(upstreams, *algo, *hashKey, *healthCheck, mkPeer, obs.health, logger)
		if err != nil {
			return err
		}
		b.grpcWeb = *grpcWeb
		b.cache = gwCache{gwc}
		balancers = append(balancers, b.lb)
		if err := srv.Add(b.lb); err != nil { // runs the health checks
			return err
		}
		if svc, err = proxy.NewService("gateway", b, svcOpts); err != nil {
			return err
		}
	} else {
		peer := mkPeer(target)
		if err := peer.Validate(); err != nil {
			return fmt.Errorf("-upstream: %w", err)
		}
		g := &gateway{peer: peer, grpcWeb: *grpcWeb, cache: gwCache{gwc}}
		if *grpcUpstream != "" {
			g.grpcPeer = &proxy.Peer{Address: *grpcUpstream, Protocol: proxy.ProtoHTTP2, Options: peerOpts}
			if err := g.grpcPeer.Validate(); err != nil {
				return fmt.Errorf("-grpc-upstream: %w", err)
			}
		}
		if svc, err = proxy.NewService("gateway", g, svcOpts); err != nil {
			return err
		}
	}
	svc.AddTCP(*listen)
	if *unixListen != "" {
		svc.AddUnix(*unixListen)
	}
	var certs func() []*tls.Certificate
	if *tlsListen != "" || *certFile != "" || *keyFile != "" {
		tcfg, err := newTLS(*tlsListen, *certFile, *keyFile, *ticketKeys, logger)
		if err != nil {
			return err
		}
		svc.AddTLS(*tlsListen, tcfg)
		if err := srv.Add(tcfg); err != nil { // reloads the files while the server runs
			return err
		}
		certs = tcfg.Certificates
	}
	if err := srv.Add(svc); err != nil {
		return err
	}
	for _, s := range obs.services {
		if err := srv.Add(s); err != nil {
			return err
		}
	}
	var adminSvc *admin.Service
	if oflags.admin != "" {
		if adminSvc, err = obs.adminService(oflags.admin, oflags.adminToken, srv, balancers, certs, logger, "gateway"); err != nil {
			return err
		}
		if err := srv.Add(adminSvc); err != nil {
			return err
		}
	}
	if demoMode {
		go func() {
			select {
			case <-srv.Ready():
			case <-srv.Done():
				return
			}
			addr := *listen
			if as := srv.Addrs("gateway"); len(as) > 0 {
				addr = as[0].String()
			}
			fmt.Printf("Gotthard gateway on http://%s, in front of a demo origin on %s.\n", addr, target)
			fmt.Printf("Try:  curl -i http://%s/\n", addr)
			if as := adminAddrs(srv, adminSvc); len(as) > 0 {
				fmt.Printf("Status page: http://%s/ (metrics at /metrics)\n", as[0])
			}
			fmt.Println("Stop with Ctrl-C.")
		}()
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() {
			if err := stop(); err != nil {
				logger.Error("writing the CPU profile", "file", *cpuProfile, "err", err)
			}
		}()
	}
	return srv.Run()
}

// startCPUProfile profiles the process into file until stop is called.
func startCPUProfile(file string) (stop func() error, err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func firstNonZero(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
