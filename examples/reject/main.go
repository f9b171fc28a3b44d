// Command reject is a proxy whose RequestFilter answers some requests itself: a request
// without the right API key gets 403 Forbidden and never reaches the origin.
//
//	go run ./examples/reject -key s3cret             # in front of a demo origin
//	curl -i http://127.0.0.1:6191/                   # 403
//	curl -i -H 'X-Api-Key: s3cret' http://127.0.0.1:6191/   # proxied
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/gotthard-proxy/gotthard/examples/internal/demo"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

type guard struct {
	proxy.Phases[struct{}]
	peer   *proxy.Peer
	header string
	key    []byte
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[struct{}] = guard{}

func (guard) NewCtx() struct{} { return struct{}{} }

func (g guard) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return g.peer, nil
}

// RequestFilter lets a request through only if it carries the key.
func (g guard) RequestFilter(_ context.Context, s *proxy.Session, _ struct{}) (proxy.Result, error) {
	got := s.Request().Header.Get(g.header)
	// The header is not forwarded either way: the origin need not see the key.
	s.Request().Header.Del(g.header)
	if subtle.ConstantTimeCompare([]byte(got), g.key) == 1 {
		return proxy.Continue, nil
	}
	return proxy.Handled, s.Respond(403, "Forbidden: missing or wrong "+g.header+"\n")
}

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "reject:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("reject", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6191", "address to accept clients on")
	upstream := fs.String("upstream", "", "origin HOST:PORT (empty: start a demo origin)")
	header := fs.String("header", "X-Api-Key", "the header field that must carry the key")
	key := fs.String("key", "s3cret", "the key")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	target := *upstream
	if target == "" {
		origin, err := demo.Start("Gotthard")
		if err != nil {
			return err
		}
		defer origin.Close()
		target = origin.Addr()
		if !sflags.Test { // -t only checks
			fmt.Printf("Try:  curl -i http://%s/   and   curl -i -H '%s: %s' http://%s/\n", *listen, *header, *key, *listen)
		}
	}
	peer, err := proxy.NewPeer(target)
	if err != nil {
		return err
	}
	g := guard{peer: peer, header: *header, key: []byte(*key)}
	svc, err := proxy.NewService("reject", g, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}
	return srv.Run()
}
