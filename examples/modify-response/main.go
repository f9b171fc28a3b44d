// Command modify-response is a proxy that rewrites responses: it adds and removes header
// fields and rewrites text bodies (every "Hello" becomes "Grüezi").
//
// Bodies arrive in pieces, and a word can be split between two of them, so the proxy
// collects a text body in its per-request context (up to a limit) and writes the rewritten
// body at the end. Bodies of other types, or longer than the limit, pass through as they
// are.
//
//	go run ./examples/modify-response            # in front of a demo origin
//	go run ./examples/modify-response -upstream 127.0.0.1:9000
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/gotthard-proxy/gotthard/examples/internal/demo"
	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

// maxRewrite is the largest body the proxy rewrites; longer ones pass unchanged.
const maxRewrite = 1 << 20

// rewriteCtx is the per-request state: whether this response is rewritten, and the body
// collected so far.
type rewriteCtx struct {
	rewrite bool
	body    bytes.Buffer
}

type rewriter struct {
	proxy.Phases[*rewriteCtx]
	peer *proxy.Peer
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*rewriteCtx] = rewriter{}

func (rewriter) NewCtx() *rewriteCtx { return &rewriteCtx{} }

func (r rewriter) UpstreamPeer(context.Context, *proxy.Session, *rewriteCtx) (*proxy.Peer, error) {
	return r.peer, nil
}

// UpstreamRequestFilter asks for an uncompressed body, which it can rewrite.
func (rewriter) UpstreamRequestFilter(_ context.Context, _ *proxy.Session, _ *rewriteCtx, req *message.RequestHeader) error {
	req.Header.Del("Accept-Encoding")
	return nil
}

// ResponseFilter changes the head, and decides whether to rewrite the body.
func (rewriter) ResponseFilter(_ context.Context, _ *proxy.Session, c *rewriteCtx, resp *message.ResponseHeader) error {
	resp.Header.Set("X-Rewritten-By", "gotthard")
	resp.Header.Del("Server")
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/") && resp.Header.Get("Content-Encoding") == "" {
		c.rewrite = true
		// The length changes, so the body goes out chunked.
		resp.Header.Del("Content-Length")
	}
	return nil
}

// ResponseBodyFilter holds back the pieces of a text body and emits the rewritten body
// at the end.
func (rewriter) ResponseBodyFilter(_ context.Context, _ *proxy.Session, c *rewriteCtx, chunk []byte, end bool) ([]byte, error) {
	if !c.rewrite {
		return chunk, nil
	}
	if c.body.Len()+len(chunk) > maxRewrite {
		// Too long to rewrite: send what was held back and stop rewriting.
		c.rewrite = false
		c.body.Write(chunk)
		return c.body.Bytes(), nil
	}
	c.body.Write(chunk)
	if !end {
		return nil, nil
	}
	return bytes.ReplaceAll(c.body.Bytes(), []byte("Hello"), []byte("Grüezi")), nil
}

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "modify-response:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("modify-response", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6189", "address to accept clients on")
	upstream := fs.String("upstream", "", "origin HOST:PORT (empty: start a demo origin)")
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
			fmt.Printf("Try:  curl -i http://%s/\n", *listen)
		}
	}
	peer, err := proxy.NewPeer(target)
	if err != nil {
		return err
	}
	svc, err := proxy.NewService("modify-response", rewriter{peer: peer}, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}
	return srv.Run()
}
