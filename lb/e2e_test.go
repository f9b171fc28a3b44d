package lb_test

import (
	"github.com/gotthard-proxy/gotthard/internal/testnet"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// balancer wires lb.Failover into the proxy's phases, as docs/load-balancing.md
// shows: select in UpstreamPeer, retry on another backend within the retry budget,
// report every outcome.
type balancer struct {
	proxy.Phases[*reqCtx]
	lb *lb.LoadBalancer[*proxy.Peer]
}

type reqCtx struct {
	failover lb.Failover[*proxy.Peer]
}

func (b *balancer) NewCtx() *reqCtx { return &reqCtx{} }

func (b *balancer) UpstreamPeer(ctx context.Context, s *proxy.Session, c *reqCtx) (*proxy.Peer, error) {
	return c.failover.Select(b.lb, s.Request().Path())
}

func (b *balancer) FailToConnect(ctx context.Context, s *proxy.Session, c *reqCtx, _ *proxy.Peer, err *proxy.Error) *proxy.Error {
	err.Retry = c.failover.FailToConnect(err, err.Retry)
	return err
}

func (b *balancer) ErrorWhileProxy(ctx context.Context, s *proxy.Session, c *reqCtx, _ *proxy.Peer, err *proxy.Error, _ bool) *proxy.Error {
	err.Retry = c.failover.ErrorWhileProxy(err, err.Source == proxy.Upstream, err.Retry || lb.Idempotent(s.Request().Method))
	return err
}

func (b *balancer) Logging(ctx context.Context, s *proxy.Session, c *reqCtx, err error) {
	c.failover.Done(s.Status(), err)
}

// origin is a backend that counts its requests and answers after delay.
type origin struct {
	name  string
	delay time.Duration
	hits  atomic.Int64
	srv   *http.Server
	addr  string
	done  chan struct{}
}

func startOrigin(t *testing.T, name, addr string, delay time.Duration) *origin {
	t.Helper()
	o := &origin{name: name, delay: delay}
	if err := o.start(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.stop)
	return o
}

func (o *origin) start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	o.addr = ln.Addr().String()
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		if o.delay > 0 {
			time.Sleep(o.delay) // the origin's service time, not a wait in the test
		}
		io.WriteString(w, o.name)
	})}
	o.done = make(chan struct{})
	go func() { o.srv.Serve(ln); close(o.done) }()
	return nil
}

// stop kills the origin: the listener and every connection close at once.
func (o *origin) stop() {
	if o.srv != nil {
		o.srv.Close()
		<-o.done
		o.srv = nil
	}
}

// startProxy runs a proxy.Service with the balancer on loopback and returns its URL.
func startProxy(t *testing.T, l *lb.LoadBalancer[*proxy.Peer]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := proxy.NewService("lb-test", &balancer{lb: l}, proxy.ServiceOptions{
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { svc.Serve([]net.Listener{ln}); close(served) }()
	t.Cleanup(func() { svc.Close(); <-served })
	return "http://" + ln.Addr().String()
}

func peerAttach(b lb.Backend) *proxy.Peer {
	return &proxy.Peer{Address: b.Addr, Options: proxy.PeerOptions{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second}}
}

// load sends n GET requests from workers keep-alive clients and returns how many
// failed, with the first error; it stops early after limit.
func load(t *testing.T, url string, workers, n int, limit time.Duration, onProgress func(done int)) (failed int64, firstErr error) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, completed atomic.Int64
	var mu sync.Mutex
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && time.Now().Before(deadline); i = next.Add(1) {
				resp, err := client.Get(fmt.Sprintf("%s/item/%d", url, i))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				done := int(completed.Add(1))
				if onProgress != nil {
					onProgress(done)
				}
			}
		})
	}
	wg.Wait()
	if done := completed.Load(); done < int64(n) {
		t.Helper()
		t.Fatalf("only %d of %d requests done within %v", done, n, limit)
	}
	return failed, firstErr
}

// TestPeakEWMAAvoidsSlowBackend: with one of three backends much slower, PeakEWMA sends
// it under 10% of requests, while round robin sends it a third. (The slow one is 50 times
// slower for PeakEWMA: the proxy's own time, large under the race detector on a loaded
// machine, narrows the gap the balancer sees.)
func TestPeakEWMAAvoidsSlowBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	tests := []struct {
		algo         lb.Algorithm
		slow         time.Duration
		minSh, maxSh float64
	}{
		{lb.PeakEWMA, 100 * time.Millisecond, 0, 0.10},
		{lb.RoundRobin, 40 * time.Millisecond, 0.30, 0.37},
	}
	for _, tt := range tests {
		t.Run(tt.algo.String(), func(t *testing.T) {
			os := []*origin{
				startOrigin(t, "fast1", "127.0.0.1:0", 2*time.Millisecond),
				startOrigin(t, "fast2", "127.0.0.1:0", 2*time.Millisecond),
				startOrigin(t, "slow", "127.0.0.1:0", tt.slow),
			}
			var bs []lb.Backend
			for _, o := range os {
				bs = append(bs, lb.Backend{Addr: o.addr})
			}
			l, err := lb.New(lb.Options[*proxy.Peer]{Algorithm: tt.algo, Backends: bs, Attach: peerAttach})
			if err != nil {
				t.Fatal(err)
			}
			url := startProxy(t, l)
			const n = 900
			if failed, err := load(t, url, 4, n, 60*time.Second, nil); failed > 0 {
				t.Fatalf("%d requests failed: %v", failed, err)
			}
			slow := float64(os[2].hits.Load()) / n
			t.Logf("%v: slow backend got %.1f%% (fast: %d, %d; slow: %d)", tt.algo, slow*100, os[0].hits.Load(), os[1].hits.Load(), os[2].hits.Load())
			if slow < tt.minSh || slow > tt.maxSh {
				t.Fatalf("slow backend's share %.3f, want %.2f..%.2f", slow, tt.minSh, tt.maxSh)
			}
		})
	}
}

// TestFailoverWhenBackendDies kills one of three backends during a load run: no client
// request fails (failover retries on another backend), the active health check marks
// it down within interval × fall, and traffic comes back once it returns.
func TestFailoverWhenBackendDies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load test")
	}
	for _, algo := range []lb.Algorithm{lb.RoundRobin, lb.LeastConn, lb.PeakEWMA, lb.Maglev} {
		t.Run(algo.String(), func(t *testing.T) {
			os := []*origin{
				startOrigin(t, "a", "127.0.0.1:0", 0),
				startOrigin(t, "b", "127.0.0.1:0", 0),
				startOrigin(t, "c", "127.0.0.1:0", 0),
			}
			var bs []lb.Backend
			for _, o := range os {
				bs = append(bs, lb.Backend{Addr: o.addr})
			}
			const interval, fall = 50 * time.Millisecond, 2
			events := make(chan timedEvent, 64)
			l, err := lb.New(lb.Options[*proxy.Peer]{
				Algorithm:   algo,
				Backends:    bs,
				Logger:      slog.New(slog.DiscardHandler),
				Attach:      peerAttach,
				HealthCheck: &lb.HealthCheck{HTTP: &lb.HTTPCheck{Path: "/health", BodyContains: ""}, Interval: interval, Timeout: interval, Fall: fall, Rise: 2},
				// Passive ejection takes the backend out at the first failures; its return
				// is left to the active check.
				Outlier:        lb.OutlierOptions{BaseEjection: time.Minute},
				OnHealthChange: func(ev lb.HealthEvent) { events <- timedEvent{ev, time.Now()} },
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- l.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-ran; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			url := startProxy(t, l)

			victim := os[1]
			killed := make(chan time.Time, 1)
			const n = 1500
			failed, ferr := load(t, url, 4, n, 60*time.Second, func(done int) {
				if done == n/3 {
					victim.stop()
					killed <- time.Now()
				}
			})
			if failed > 0 {
				t.Fatalf("%d of %d client requests failed: %v", failed, n, ferr)
			}
			killedAt := <-killed
			ev := waitEvent(t, events, func(ev lb.HealthEvent) bool {
				return ev.Backend.Addr == victim.addr && ev.Cause == lb.ActiveCheck && !ev.Healthy
			})
			// interval × fall, plus one interval for the round under way and slack
			// for a loaded machine's scheduling.
			if limit := interval*(fall+1) + 250*time.Millisecond; ev.at.Sub(killedAt) > limit {
				t.Errorf("marked down %v after the kill, want within %v", ev.at.Sub(killedAt), limit)
			} else {
				t.Logf("marked down %v after the kill (interval %v × fall %d)", ev.at.Sub(killedAt).Round(time.Millisecond), interval, fall)
			}
			if ev.Err == nil {
				t.Error("down event without the check's error")
			}

			// Bring it back on the same address: the check marks it up and it gets traffic.
			if err := victim.start(victim.addr); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, events, func(ev lb.HealthEvent) bool {
				return ev.Backend.Addr == victim.addr && ev.Cause == lb.ActiveCheck && ev.Healthy
			})
			before := victim.hits.Load()
			if failed, err := load(t, url, 4, 300, 30*time.Second, nil); failed > 0 {
				t.Fatalf("%d requests failed after the return: %v", failed, err)
			}
			if victim.hits.Load() == before {
				t.Fatal("the returned backend got no traffic")
			}
		})
	}
}

type timedEvent struct {
	lb.HealthEvent
	at time.Time
}

// waitEvent waits for a health event that matches, with a deadline.
func waitEvent(t *testing.T, events <-chan timedEvent, match func(lb.HealthEvent) bool) timedEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if match(ev.HealthEvent) {
				return ev
			}
		case <-timeout:
			t.Fatal(errors.New("timed out waiting for a health event"))
		}
	}
}

// hungBackend accepts connections and reads requests but never answers, like a
// process stuck after accept. It counts the connections that sent a request.
type hungBackend struct {
	ln       net.Listener
	requests atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startHungBackend(t *testing.T) *hungBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungBackend{ln: ln, conns: map[net.Conn]struct{}{}}
	h.wg.Go(h.accept)
	t.Cleanup(h.stop)
	return h
}

func (h *hungBackend) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns[c] = struct{}{}
		h.mu.Unlock()
		h.wg.Go(func() {
			buf := make([]byte, 4096)
			first := true
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
				if first {
					h.requests.Add(1)
					first = false
				}
			}
			c.Close()
		})
	}
}

// stop closes the listener and every connection, and waits for the goroutines.
func (h *hungBackend) stop() {
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// TestTimeoutEjects: a backend that accepts and never answers is ejected by its read
// timeouts, as nginx marks a server down for fail_timeout after max_fails failures,
// timeouts included. Every request succeeds by failover, and at most one request per
// ejection period waits for the hung backend.
func TestTimeoutEjects(t *testing.T) {
	good := startOrigin(t, "good", "127.0.0.1:0", 0)
	hung := startHungBackend(t)
	const readTimeout, ejection = 200 * time.Millisecond, 2 * time.Second
	l, err := lb.New(lb.Options[*proxy.Peer]{
		Backends: []lb.Backend{{Addr: hung.ln.Addr().String()}, {Addr: good.addr}},
		Outlier:  lb.OutlierOptions{ConsecutiveFailures: 1, BaseEjection: ejection},
		Attach: func(b lb.Backend) *proxy.Peer {
			return &proxy.Peer{Address: b.Addr, Options: proxy.PeerOptions{ConnectTimeout: time.Second, ReadTimeout: readTimeout}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := startProxy(t, l)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	start := time.Now()
	const n = 20
	for i := range n {
		resp, err := client.Get(fmt.Sprintf("%s/item/%d", url, i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "good" {
			t.Fatalf("request %d: status %d body %q err %v", i, resp.StatusCode, body, err)
		}
	}
	elapsed := time.Since(start)
	// The first ejection lasts one period and later ones longer, so the hung backend
	// may see one request at the start and at most one more per period elapsed.
	allowed := 1 + int64(elapsed/ejection)
	if got := hung.requests.Load(); got > allowed {
		t.Fatalf("the hung backend got %d of %d requests in %v, want at most %d (one per %v ejection)", got, n, elapsed.Round(time.Millisecond), allowed, ejection)
	}
	if l.Stats().Ejections == 0 {
		t.Fatal("the hung backend was never ejected")
	}
}

// refusedAddr returns a loopback address where connecting is refused (testnet.DeadAddr).
func refusedAddr(t *testing.T) string {
	t.Helper()
	return testnet.DeadAddr(t)
}

// get sends a GET and returns the status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestFailover: through a real proxy, lb.Failover retries a request whose backend
// refuses connections on the other backend, ejects the refusing one after
// ConsecutiveFailures, and asks for no retry beyond the retry budget.
func TestFailover(t *testing.T) {
	good := startOrigin(t, "good", "127.0.0.1:0", 0)
	refused := refusedAddr(t)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	t.Run("fails over and ejects", func(t *testing.T) {
		l, err := lb.New(lb.Options[*proxy.Peer]{
			Backends: []lb.Backend{{Addr: refused}, {Addr: good.addr}},
			Outlier:  lb.OutlierOptions{ConsecutiveFailures: 2, BaseEjection: time.Minute},
			Attach:   peerAttach,
		})
		if err != nil {
			t.Fatal(err)
		}
		url := startProxy(t, l)
		for i := range 20 {
			if status, body := get(t, client, fmt.Sprintf("%s/item/%d", url, i)); status != 200 || body != "good" {
				t.Fatalf("request %d: %d %q, want 200 from the good backend", i, status, body)
			}
		}
		if !l.Lookup(refused).Ejected() || l.Stats().Ejections != 1 {
			t.Fatalf("refusing backend ejected %v, %d ejections; want ejected once", l.Lookup(refused).Ejected(), l.Stats().Ejections)
		}
		// One retry per connect failure, and none once the backend was ejected.
		if got := l.RetryBudget().Allowed(); got < 1 || got > 2 {
			t.Fatalf("%d retries, want 1 or 2 (ConsecutiveFailures)", got)
		}
	})

	t.Run("within the budget", func(t *testing.T) {
		l, err := lb.New(lb.Options[*proxy.Peer]{
			Backends:    []lb.Backend{{Addr: refused}, {Addr: good.addr}},
			Outlier:     lb.OutlierOptions{Disabled: true},
			RetryBudget: lb.RetryBudgetOptions{Ratio: -1, MinPerSecond: -1}, // no retries
			Attach:      peerAttach,
		})
		if err != nil {
			t.Fatal(err)
		}
		url := startProxy(t, l)
		var bad int
		for i := range 10 {
			switch status, body := get(t, client, fmt.Sprintf("%s/item/%d", url, i)); {
			case status == http.StatusBadGateway:
				bad++
			case status != 200 || body != "good":
				t.Fatalf("request %d: %d %q", i, status, body)
			}
		}
		if bad == 0 || uint64(bad) != l.RetryBudget().Denied() || l.RetryBudget().Allowed() != 0 {
			t.Fatalf("%d requests failed, budget denied %d and allowed %d retries; want every failure a denied retry",
				bad, l.RetryBudget().Denied(), l.RetryBudget().Allowed())
		}
	})
}
