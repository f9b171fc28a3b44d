// Command grpc is a gRPC gateway built on Gotthard: a proxy that sends every call to one
// gRPC server over HTTP/2 in clear text (h2c), bridges gRPC-web calls from browsers to
// it, and logs each call with its gRPC status.
//
// With no arguments it starts a demo gRPC service on loopback (grpc-go's interop
// TestService, with server reflection), the gateway in front of it on 127.0.0.1:6193,
// makes a unary, a server-streaming, a client-streaming and a bidirectional call through
// the gateway, then a gRPC-web call over HTTP/1.1, prints what they returned, and keeps
// serving; with -once it exits after the calls. With -upstream it proxies to your own
// gRPC server instead:
//
//	go run ./examples/grpc
//	go run ./examples/grpc -once
//	go run ./examples/grpc -listen 0.0.0.0:8080 -upstream 127.0.0.1:50051
//
// gRPC clients reach the gateway over h2c by prior knowledge (grpc-go's insecure
// credentials, grpcurl -plaintext); gRPC-web clients over HTTP/1.1 or HTTP/2. It also
// takes the server flags (-c conf.yaml, -d, -u, -t).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

// gateway sends every call to one gRPC server. It is immutable, so safe for concurrent
// use; the state of one call is in its *call.
type gateway struct {
	proxy.Phases[*call]
	peer *proxy.Peer // made once, shared by every call
	log  *slog.Logger
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*call] = (*gateway)(nil)

// call is the per-request state: whether it came as gRPC-web, and the gRPC status the
// server answered with, if any.
type call struct {
	web        string // "binary" or "text" for a gRPC-web call, else empty
	grpcStatus string // the grpc-status field; empty until the server sent one
}

func (g *gateway) NewCtx() *call { return &call{} }

// EarlyRequestFilter turns the gRPC-web bridge on for a gRPC-web call (Content-Type
// application/grpc-web or application/grpc-web-text): from here on the request is a gRPC
// call, to the later phases and to the server, and the bridge turns the response back
// into gRPC-web as it is written to the client, trailers in the body's last frame. It
// runs before anything reads the request body, as the bridge requires. Other requests,
// gRPC calls included, go through as they are.
func (g *gateway) EarlyRequestFilter(_ context.Context, s *proxy.Session, c *call) error {
	const text = "application/grpc-web-text"
	ct := s.Request().Header.Get("Content-Type") // before the bridge rewrites it
	if s.BridgeGRPCWeb() {
		c.web = "binary"
		if len(ct) >= len(text) && strings.EqualFold(ct[:len(text)], text) {
			c.web = "text"
		}
	}
	return nil
}

// UpstreamPeer returns the one peer. Its Protocol is HTTP/2 (gRPC servers speak nothing
// else) and it has no TLS, so the proxy speaks h2c to it.
func (g *gateway) UpstreamPeer(context.Context, *proxy.Session, *call) (*proxy.Peer, error) {
	return g.peer, nil
}

// ResponseFilter records grpc-status from the response head: a call that fails at once
// gets a "trailers-only" response, whose status is there. For a gRPC-web call too, this
// phase and ResponseTrailerFilter see the server's gRPC response.
func (g *gateway) ResponseFilter(_ context.Context, _ *proxy.Session, c *call, resp *message.ResponseHeader) error {
	if v, ok := resp.Header.Lookup("Grpc-Status"); ok {
		c.grpcStatus = v
	}
	return nil
}

// ResponseTrailerFilter records grpc-status from the trailers, where a call that ran
// carries it.
func (g *gateway) ResponseTrailerFilter(_ context.Context, _ *proxy.Session, c *call, trailers *message.Header) error {
	if v, ok := trailers.Lookup("Grpc-Status"); ok {
		c.grpcStatus = v
	}
	return nil
}

// Logging writes one access log line per call, with its gRPC status by name, and for a
// gRPC-web call, its form.
func (g *gateway) Logging(ctx context.Context, s *proxy.Session, c *call, err error) {
	req, t := s.Request(), s.Timing()
	attrs := []any{
		"client", s.ClientAddr().String(),
		"method", req.Target, // a gRPC call's path is /package.Service/Method
		"status", s.Status(),
		"grpc_status", statusName(c.grpcStatus),
		"duration", t.End.Sub(t.Start),
	}
	if c.web != "" {
		attrs = append(attrs, "grpc_web", c.web)
	}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	g.log.InfoContext(ctx, "access", attrs...)
}

// statusName returns the name of a grpc-status value ("OK", "NotFound"), "-" for none,
// or the value itself if it is not a number.
func statusName(v string) string {
	if v == "" {
		return "-"
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return v
	}
	return codes.Code(n).String()
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
}

// run runs the gateway until a signal stops it, or, with -once, until the demo calls are
// done. It prints the addresses and the calls' results on stdout.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6193", "address to accept gRPC clients on (h2c), and gRPC-web clients (HTTP/1.1 or h2c)")
	upstream := fs.String("upstream", "", "gRPC server HOST:PORT to proxy to over h2c (empty: start the demo service)")
	once := fs.Bool("once", false, "exit after the demo calls instead of serving on (only with the demo service)")
	readTimeout := fs.Duration("read-timeout", 0, "longest wait for the gRPC server: for the response head, then for each piece of the response (0: 60s)")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *once && *upstream != "" {
		return errors.New("-once makes the demo calls, which need the demo service: drop -upstream")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	target := *upstream
	if target == "" {
		d, err := startDemo()
		if err != nil {
			return err
		}
		defer d.Stop()
		target = d.Addr()
	}
	g := &gateway{
		peer: &proxy.Peer{Address: target, Protocol: proxy.ProtoHTTP2, Options: proxy.PeerOptions{ReadTimeout: *readTimeout}},
		log:  logger,
	}
	svc, err := proxy.NewService("grpc", g, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- srv.Run() }()
	select {
	case <-srv.Ready():
	case err := <-done: // failed to start, or -d: the daemon runs on
		return err
	}
	addr := *listen
	if as := srv.Addrs("grpc"); len(as) > 0 {
		addr = as[0].String()
	}
	if *upstream != "" {
		fmt.Fprintf(stdout, "Gotthard gRPC gateway on %s, in front of %s.\n", addr, target)
		fmt.Fprintln(stdout, "Stop with Ctrl-C.")
		return <-done
	}
	fmt.Fprintf(stdout, "Gotthard gRPC gateway on %s, in front of a demo gRPC service on %s.\n\n", addr, target)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = demoCalls(ctx, addr, stdout)
	cancel()
	if err != nil || *once {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) // past ctx, a fast shutdown; Run's result tells how it ended
		if runErr := <-done; err == nil {
			err = runErr
		}
		return err
	}
	fmt.Fprintf(stdout, "\nTry:  grpcurl -plaintext %s list grpc.testing.TestService\n", addr)
	fmt.Fprintf(stdout, "      grpcurl -plaintext -d '{\"response_size\": 5}' %s grpc.testing.TestService/UnaryCall\n", addr)
	// EmptyCall's request is an empty message: the frame 00 00000000, "AAAAAAA=" in base64.
	fmt.Fprintf(stdout, "      curl -s -H 'Content-Type: application/grpc-web-text' -d AAAAAAA= http://%s/grpc.testing.TestService/EmptyCall | base64 -d | od -c\n", addr)
	fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	return <-done
}
