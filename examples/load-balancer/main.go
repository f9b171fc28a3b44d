// Command load-balancer is a proxy that balances over three origins with active health
// checks, outlier detection and failover, all on loopback.
//
// It starts three demo origins in-process and the proxy on 127.0.0.1:6190. With -demo
// it plays a short script by itself: traffic, one origin killed (no client request
// fails; the health check marks it down), the origin back (traffic returns), then it
// exits. Without -demo it runs until Ctrl-C and prints what to try.
//
//	go run ./examples/load-balancer -demo
//	go run ./examples/load-balancer -lb ewma
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/server"
)

// balancer wires lb.Failover into the phases (see docs/load-balancing.md): each retry
// goes to an origin the request has not tried, within the balancer's retry budget,
// and every outcome feeds outlier detection.
type balancer struct {
	proxy.Phases[*reqCtx]
	lb *lb.LoadBalancer[*proxy.Peer]
}

// A wrong phase signature fails to compile here, naming the method.
var _ proxy.ProxyHTTP[*reqCtx] = (*balancer)(nil)

// reqCtx is the per-request state: the origins tried and the current attempt.
type reqCtx struct {
	failover lb.Failover[*proxy.Peer]
}

func (b *balancer) NewCtx() *reqCtx { return &reqCtx{} }

func (b *balancer) UpstreamPeer(_ context.Context, s *proxy.Session, c *reqCtx) (*proxy.Peer, error) {
	return c.failover.Select(b.lb, s.Request().Path()) // skips origins already tried
}

func (b *balancer) FailToConnect(_ context.Context, _ *proxy.Session, c *reqCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	err.Retry = c.failover.FailToConnect(err, err.Retry) // over budget: fail rather than add to a retry storm
	return err
}

func (b *balancer) ErrorWhileProxy(_ context.Context, s *proxy.Session, c *reqCtx, _ *proxy.Peer, err *proxy.Error, _ bool) *proxy.Error {
	// The framework retries only if nothing reached the client yet.
	err.Retry = c.failover.ErrorWhileProxy(err, err.Source == proxy.Upstream, err.Retry || lb.Idempotent(s.Request().Method))
	return err
}

func (b *balancer) Logging(_ context.Context, s *proxy.Session, c *reqCtx, err error) {
	c.failover.Done(s.Status(), err)
}

// origin is a demo origin that answers its name and can be stopped and started again
// on the same address.
type origin struct {
	name string
	addr string
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func (o *origin) start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("origin %s: %w", o.name, err)
	}
	o.addr = ln.Addr().String()
	o.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin %s\n", o.name)
	})}
	o.done = make(chan struct{})
	srv, done := o.srv, o.done
	go func() { srv.Serve(ln); close(done) }()
	return nil
}

// kill closes the listener and every connection at once, like a crashed process.
func (o *origin) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		o.srv.Close()
		<-o.done
		o.srv = nil
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if errors.Is(err, server.ErrConfigTested) {
			fmt.Println("configuration OK")
			return
		}
		fmt.Fprintln(os.Stderr, "load-balancer:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("load-balancer", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6190", "address to accept clients on")
	algo := fs.String("lb", "round-robin", "algorithm: round-robin, random, least-conn, ewma, ketama, maglev (the hashing ones hash the path)")
	demo := fs.Bool("demo", false, "play the scripted demo, then exit")
	sflags := server.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := lb.ParseAlgorithm(*algo)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.NewFromFlags(*sflags, server.Options{Logger: logger, NoSignals: *demo})
	if err != nil {
		return err
	}

	origins := []*origin{{name: "one"}, {name: "two"}, {name: "three"}}
	var bs []lb.Backend
	for _, o := range origins {
		if err := o.start(); err != nil {
			return err
		}
		defer o.kill()
		bs = append(bs, lb.Backend{Addr: o.addr})
	}
	const interval, fall = 200 * time.Millisecond, 2
	bal, err := lb.New(lb.Options[*proxy.Peer]{
		Name:      "origins",
		Algorithm: a,
		Backends:  bs,
		HealthCheck: &lb.HealthCheck{
			HTTP:     &lb.HTTPCheck{Path: "/", BodyContains: "origin"},
			Interval: interval, Timeout: interval, Fall: fall, Rise: 2,
		},
		Attach: func(b lb.Backend) *proxy.Peer {
			return &proxy.Peer{Address: b.Addr, Options: proxy.PeerOptions{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second}}
		},
		OnHealthChange: func(ev lb.HealthEvent) {
			state := "down"
			if ev.Healthy {
				state = "up"
			}
			fmt.Fprintf(out, "  health: %s is %s (%s)\n", ev.Backend.Addr, state, ev.Cause)
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	svc, err := proxy.NewService("load-balancer", &balancer{lb: bal}, proxy.ServiceOptions{Logger: logger})
	if err != nil {
		return err
	}
	svc.AddTCP(*listen)
	if err := srv.Add(svc); err != nil {
		return err
	}
	if err := srv.Add(bal); err != nil { // runs the health checks
		return err
	}
	if !*demo {
		go func() {
			select {
			case <-srv.Ready():
			case <-srv.Done():
				return
			}
			addr := srv.Addrs("load-balancer")[0].String()
			fmt.Fprintf(out, "Balancing (%s) over %s, %s and %s on http://%s\n", a, origins[0].addr, origins[1].addr, origins[2].addr, addr)
			fmt.Fprintf(out, "Try:  for i in $(seq 6); do curl -s http://%s/; done\n", addr)
			fmt.Fprintln(out, "Run with -demo to watch an origin die and come back. Stop with Ctrl-C.")
		}()
		return srv.Run()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- srv.RunContext(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-ran:
		return err
	}
	script := demoScript{out: out, url: "http://" + srv.Addrs("load-balancer")[0].String(), origins: origins}
	err = script.play(ctx, bal, interval*fall)
	cancel()
	if rerr := <-ran; err == nil {
		err = rerr
	}
	return err
}

// demoScript drives the -demo run.
type demoScript struct {
	out     io.Writer
	url     string
	origins []*origin
}

// burst sends n requests from 4 keep-alive clients and prints where they went.
func (d *demoScript) burst(ctx context.Context, c *http.Client, n int) (failed int) {
	var next, bad atomic.Int64
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/item/%d", d.url, i), nil)
				resp, err := c.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					bad.Add(1)
					continue
				}
				mu.Lock()
				count[strings.TrimSpace(string(body))]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(d.out, "  %d requests: one=%d two=%d three=%d, failed=%d\n", n, count["origin one"], count["origin two"], count["origin three"], bad.Load())
	return int(bad.Load())
}

func (d *demoScript) play(ctx context.Context, bal *lb.LoadBalancer[*proxy.Peer], detect time.Duration) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	failed := 0
	fmt.Fprintln(d.out, "1. All three origins up:")
	failed += d.burst(ctx, c, 300)

	fmt.Fprintln(d.out, "2. Origin two killed while traffic flows:")
	two := d.origins[1]
	killed := make(chan struct{})
	go func() { two.kill(); close(killed) }()
	failed += d.burst(ctx, c, 300)
	<-killed
	if err := waitUntil(ctx, func() bool { return !bal.Lookup(two.addr).Healthy() }); err != nil {
		return fmt.Errorf("origin two was not marked down: %w", err)
	}
	fmt.Fprintf(d.out, "   (the health check marks it down within %v)\n", detect)
	failed += d.burst(ctx, c, 300)

	fmt.Fprintln(d.out, "3. Origin two back on the same address:")
	if err := two.start(); err != nil {
		return err
	}
	if err := waitUntil(ctx, func() bool { return bal.Lookup(two.addr).Available() }); err != nil {
		return fmt.Errorf("origin two did not come back: %w", err)
	}
	failed += d.burst(ctx, c, 300)
	fmt.Fprintf(d.out, "Done: %d client requests failed.\n", failed)
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
