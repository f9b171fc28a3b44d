// Command websocket is a proxy for WebSocket connections: an echo origin behind the proxy
// and a client that talks to it.
//
// With no arguments it starts a WebSocket echo origin on loopback (coder/websocket in a
// net/http server), the proxy in front of it on 127.0.0.1:6192 and a client that
// connects through the proxy, sends text and binary messages (one of 1 MiB), checks the
// echoes, pings and closes. Then it keeps serving and prints what to try; with -once it
// exits after the client, with status 1 if a check failed:
//
//	go run ./examples/websocket
//	go run ./examples/websocket -once
//	go run ./examples/websocket -allow-origin https://app.example,http://127.0.0.1:6192
//	go run ./examples/websocket -upstream 127.0.0.1:9000 -idle-timeout 1m
//
// The proxy's phases see each handshake: RequestFilter answers 403 to a handshake whose
// Origin is not in the -allow-origin list, ResponseFilter sees the origin's 101, and
// Logging writes one line per WebSocket connection when it ends. After the 101 the
// connection is a tunnel of bytes that ends when both sides have closed, or after
// -idle-timeout without traffic. HTTP/2 clients are served too, on the same listener
// (h2c by prior knowledge): a WebSocket over HTTP/2 (RFC 8441) reaches the phases as
// the same handshake, and the origin as an HTTP/1.1 one.
//
// It also takes the server flags (-c conf.yaml, -d, -u, -t).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/coder/websocket"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "websocket:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("websocket", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6192", "address to accept clients on")
	upstream := fs.String("upstream", "", "WebSocket origin HOST:PORT to proxy to (empty: start the demo echo origin and client)")
	allowOrigin := fs.String("allow-origin", "", "origins allowed to open WebSocket connections, separated by commas, as scheme://host[:port] (empty: every origin)")
	idleTimeout := fs.Duration("idle-timeout", 0, "close a WebSocket connection after this long without a byte either way (0: the proxy's default, 5m)")
	once := fs.Bool("once", false, "exit after the demo client has run (only with the demo origin)")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	allow, err := parseAllowList(*allowOrigin)
	if err != nil {
		return fmt.Errorf("-allow-origin: %w", err)
	}
	if *idleTimeout < 0 {
		return fmt.Errorf("-idle-timeout: %v is negative", *idleTimeout)
	}
	if *once && *upstream != "" {
		return errors.New("-once runs the demo client, which needs the demo origin: drop -upstream")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger})
	if err != nil {
		return err
	}

	target := *upstream
	demo := target == ""
	if demo {
		origin, err := startEchoOrigin()
		if err != nil {
			return err
		}
		defer origin.Close()
		target = origin.Addr()
	}
	peer, err := proxy.NewPeer(target)
	if err != nil {
		return err
	}
	p := &wsProxy{peer: peer, allow: allow, log: logger}
	svc, err := proxy.NewService("websocket", p, proxy.ServiceOptions{
		Logger:            logger,
		TunnelIdleTimeout: *idleTimeout,
	})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}
	if !demo {
		return srv.Run()
	}

	// The client runs once the proxy listens; run waits for it before returning.
	clientDone := make(chan error, 1)
	go func() { clientDone <- demoClient(srv, target, allow, *once) }()
	runErr := srv.Run()
	if err := <-clientDone; err != nil {
		return errors.Join(runErr, fmt.Errorf("client: %w", err))
	}
	return runErr
}

// demoClient waits until srv is ready, runs the client through the proxy and prints
// what to try next. With once, or if the client failed, it shuts srv down.
func demoClient(srv *server.Server, origin string, allow map[string]bool, once bool) error {
	select {
	case <-srv.Ready():
	case <-srv.Done():
		return nil // Run failed; it reports why
	}
	addr := srv.Addrs("websocket")[0].String()
	fmt.Printf("Gotthard WebSocket proxy on ws://%s/echo, in front of an echo origin on %s.\n", addr, origin)

	err := clientRun(addr, allow)
	if err != nil || once {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if serr := srv.Shutdown(ctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
		}
		return err
	}
	fmt.Printf("Try:  open http://%s/ in a browser (its page echoes through the proxy)\n", addr)
	fmt.Printf("      or  websocat ws://%s/echo\n", addr)
	fmt.Println("Stop with Ctrl-C.")
	return nil
}

// clientRun runs the client against the proxy at addr over HTTP/1.1. With an allow
// list, the client sends the first allowed origin, and a handshake from another origin
// is shown to be refused.
func clientRun(addr string, allow map[string]bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	opts := websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: http.Header{}}
	url := "ws://" + addr + "/echo"
	if len(allow) > 0 {
		origins := make([]string, 0, len(allow))
		for o := range allow {
			origins = append(origins, o)
		}
		slices.Sort(origins)
		dialOpts := opts
		dialOpts.HTTPHeader = http.Header{"Origin": {origins[0]}}
		if err := runClient(ctx, os.Stdout, url, &dialOpts); err != nil {
			return err
		}
		if refused := "https://not-allowed.invalid"; !allow[refused] {
			return refusedOrigin(ctx, os.Stdout, url, refused, opts)
		}
		return nil
	}
	return runClient(ctx, os.Stdout, url, &opts)
}
