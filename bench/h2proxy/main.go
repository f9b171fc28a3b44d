// Command h2proxy is the Gotthard side of the HTTP/2 benchmark (bench/h2.sh): a
// proxy.Service with one TLS endpoint (HTTP/2 or HTTP/1.1 by ALPN) proxying every request
// to one upstream over HTTP/1.1 or h2c, and nothing else: the program a user of package
// proxy writes for that job, so that the benchmark sees what the proxy costs, not what
// examples/gateway links in besides (metrics, tracing, caching, compression, limits).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gotthard-proxy/gotthard/proxy"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

type forward struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

func (forward) NewCtx() struct{} { return struct{}{} }

func (f forward) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return f.peer, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "h2proxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8443", "address to accept TLS on")
	cert := flag.String("cert", "", "PEM certificate file")
	key := flag.String("key", "", "PEM key file")
	upstream := flag.String("upstream", "", "HOST:PORT of the upstream")
	proto := flag.String("upstream-proto", "h1", "protocol to the upstream: h1 or h2c")
	keepalive := flag.Int("keepalive", 0, "idle upstream connections kept (0: the service's default)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	peer, err := proxy.NewPeer(*upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	switch *proto {
	case "h1":
	case "h2c":
		peer.Protocol = proxy.ProtoHTTP2
	default:
		return fmt.Errorf("-upstream-proto %q: want h1 or h2c", *proto)
	}
	cfg, err := gtls.New(gtls.Options{Logger: logger, Certificates: []gtls.CertFile{{CertFile: *cert, KeyFile: *key}}})
	if err != nil {
		return err
	}
	svc, err := proxy.NewService("h2proxy", forward{peer: peer},
		proxy.ServiceOptions{Logger: logger, UpstreamKeepalivePoolSize: *keepalive})
	if err != nil {
		return err
	}
	svc.AddTLS(*listen, cfg)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		svc.Close()
	}()
	return svc.ListenAndServe()
}
