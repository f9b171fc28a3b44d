// Command tlsserver is the Gotthard side of the TLS handshake benchmark (bench/tls.sh): a
// proxy.Service with one TLS endpoint whose RequestFilter answers every request itself
// with "ok", as nginx's `return 200 ok` does, so that the benchmark measures TLS
// termination (accept, handshake, one request and response over TLS) and nothing
// upstream.
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

type answer struct{ proxy.Phases[struct{}] }

func (answer) NewCtx() struct{} { return struct{}{} }

func (answer) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return nil, fmt.Errorf("tlsserver: no upstream")
}

func (answer) RequestFilter(_ context.Context, s *proxy.Session, _ struct{}) (proxy.Result, error) {
	return proxy.Handled, s.Respond(200, "ok")
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "address to accept TLS on")
	cert := flag.String("cert", "", "PEM certificate file")
	key := flag.String("key", "", "PEM key file")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := gtls.New(gtls.Options{Logger: logger, Certificates: []gtls.CertFile{{CertFile: *cert, KeyFile: *key}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(1)
	}
	svc, err := proxy.NewService("tlsserver", answer{}, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(1)
	}
	svc.AddTLS(*listen, cfg)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		svc.Close()
	}()
	if err := svc.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "tlsserver:", err)
		os.Exit(1)
	}
}
