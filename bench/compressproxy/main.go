// Command compressproxy is the proxy of bench/compress.sh: a Gotthard service that sends
// every request to one origin, with the response compression module
// (modules/compress) registered, and nothing else.
//
//	compressproxy -listen 127.0.0.1:8080 -upstream 127.0.0.1:9000 -gzip-level 6
//
// It stops on SIGTERM or SIGINT, draining requests in flight for up to 5 s.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gotthard-proxy/gotthard/modules/compress"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// app sends every request to peer.
type app struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

func (app) NewCtx() struct{} { return struct{}{} }

func (a app) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return a.peer, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	upstream := flag.String("upstream", "", "origin as HOST:PORT")
	codings := flag.String("codings", "", "codings in the server's order of preference, comma-separated (default zstd,br,gzip)")
	gzipLevel := flag.Int("gzip-level", 0, "gzip level, 1-9 (default 6)")
	brQuality := flag.Int("br-quality", 0, "Brotli quality, 1-11 (default 5)")
	zstdLevel := flag.Int("zstd-level", 0, "zstd level, 1-22 (default 3)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("compressproxy: ")
	if *upstream == "" {
		log.Fatal("-upstream is required")
	}
	opts := compress.Options{GzipLevel: *gzipLevel, BrotliQuality: *brQuality, ZstdLevel: *zstdLevel}
	if *codings != "" {
		opts.Codings = strings.Split(*codings, ",")
	}
	zip, err := compress.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	peer, err := proxy.NewPeer(*upstream)
	if err != nil {
		log.Fatalf("-upstream: %v", err)
	}
	svc, err := proxy.NewService("compressproxy", app{peer: peer}, proxy.ServiceOptions{
		Modules: []proxy.Module{zip},
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-served:
		log.Fatal(err)
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	if err := <-served; err != nil {
		log.Fatal(err)
	}
}
