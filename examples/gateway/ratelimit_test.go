package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// tally counts a load's answers by status; anything else (another status, an error of
// the connection) is kept as a failure.
type tally struct {
	mu       sync.Mutex
	ok       int
	refused  int
	failures []string
	slowest  time.Duration
}

func (c *tally) add(status int, err error, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slowest = max(c.slowest, took)
	switch {
	case err != nil:
		c.failures = append(c.failures, err.Error())
	case status == 200:
		c.ok++
	case status == 429:
		c.refused++
	default:
		c.failures = append(c.failures, "status "+strconv.Itoa(status))
	}
}

// take returns the counts and starts again from zero.
func (c *tally) take() (ok, refused int, failures []string, slowest time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, refused, failures, slowest = c.ok, c.refused, c.failures, c.slowest
	c.ok, c.refused, c.failures, c.slowest = 0, 0, nil, 0
	return ok, refused, failures, slowest
}

// sendLoad sends a GET to addr every interval from each of senders goroutines (a new one
// as soon as the last is answered, when that took longer), counting the answers in c,
// until stop is closed. wait returns when every sender is done.
func sendLoad(addr string, senders int, interval time.Duration, c *tally, stop <-chan struct{}) (wait func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: senders}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				start := time.Now()
				resp, err := client.Get("http://" + addr + "/")
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				c.add(status, err, time.Since(start))
				select { // stop first, when a tick is due too
				case <-stop:
					return
				default:
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	return func() {
		wg.Wait()
		tr.CloseIdleConnections()
	}
}

// TestRateLimitRedisFleet: two gateways sharing a redis-server hold -rate-limit N/s for
// one client address across both, within 5%; when Redis is killed under load, each
// goes on limiting by itself, every answer still a 200 or a 429, and says so once.
func TestRateLimitRedisFleet(t *testing.T) {
	rds := testnet.StartRedis(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	defer origin.Close()
	up := strings.TrimPrefix(origin.URL, "http://")

	// N = 50/s, and the gateway's burst is N too. A token bucket that starts full
	// admits its burst B at once, then one request every 1/N s, so over D seconds of
	// load heavier than N it admits B + N·D: 50 + 50·4 = 250 here, for 4 s. The load
	// is 4N (two senders per gateway, one request each every 20 ms), so the bucket
	// stays empty after the first quarter second and every token is taken as soon as
	// it comes; what the limit lets through per second is (admitted − B) / D, to be
	// within 5% of N: 200 ± 10 requests. The edges of D (a request's latency, a few
	// ms) are worth a fraction of one token at 50/s.
	const (
		n     = 50
		burst = n
		d     = 4 * time.Second
	)
	flags := []string{"-rate-limit", strconv.Itoa(n) + "/s", "-rate-limit-redis", rds.Addr()}
	gws := []*gatewayProc{startProxying(t, up, flags...), startProxying(t, up, flags...)}

	tallies := []*tally{{}, {}}
	stop := make(chan struct{})
	var waits []func()
	start := time.Now()
	for i, g := range gws {
		waits = append(waits, sendLoad(g.addr, 2, 20*time.Millisecond, tallies[i], stop))
	}
	time.Sleep(d) // the length of the measure, not a wait for an event
	measured := time.Since(start)
	ok0, ref0, fail0, _ := tallies[0].take()
	ok1, ref1, fail1, _ := tallies[1].take()
	admitted := ok0 + ok1
	perSecond := float64(admitted-burst) / measured.Seconds()
	t.Logf("over %v: %d + %d admitted, %d + %d refused: (%d - %d) / %.2fs = %.1f/s for a limit of %d/s",
		measured.Round(time.Millisecond), ok0, ok1, ref0, ref1, admitted, burst, measured.Seconds(), perSecond, n)
	if len(fail0)+len(fail1) > 0 {
		t.Errorf("failed requests with Redis up: %q %q", fail0, fail1)
	}
	if perSecond < 0.95*n || perSecond > 1.05*n {
		t.Errorf("admitted %.1f/s across both gateways; want %d/s within 5%%", perSecond, n)
	}
	if ok0 == 0 || ok1 == 0 || ref0 == 0 || ref1 == 0 {
		t.Errorf("each gateway should admit some and refuse some: %d/%d, %d/%d", ok0, ref0, ok1, ref1)
	}
	for i, g := range gws {
		if s := g.stderr.String(); strings.Contains(s, "Redis unreachable") {
			t.Fatalf("gateway %d fell back while Redis was up:\n%s", i, s)
		}
	}

	// Redis dies under the same load. Each gateway now limits with a token bucket of
	// its own, which starts full: over T seconds each admits at most B + N·T (more
	// across both than the fleet-wide limit would, as documented), and refuses the
	// rest of its 2N a second; nothing fails.
	rds.Kill()
	killed := time.Now()
	for i, g := range gws {
		waitFor(t, fmt.Sprintf("gateway %d to log that Redis is down", i), 10*time.Second, func() bool {
			return strings.Contains(g.stderr.String(), "Redis unreachable")
		})
	}
	time.Sleep(3 * time.Second) // the length of the load after the kill
	close(stop)
	for _, w := range waits {
		w()
	}
	after := time.Since(killed)
	for i, g := range gws {
		ok, refused, failures, _ := tallies[i].take()
		t.Logf("gateway %d, %v after the kill: %d admitted, %d refused", i, after.Round(time.Millisecond), ok, refused)
		if len(failures) > 0 {
			t.Errorf("gateway %d: %d failed requests after Redis died: %q", i, len(failures), failures[:min(len(failures), 5)])
		}
		if max := burst + int(n*after.Seconds()*1.05) + 1; ok == 0 || ok > max {
			t.Errorf("gateway %d admitted %d after the kill; want 1 to %d (its own limit)", i, ok, max)
		}
		if refused == 0 {
			t.Errorf("gateway %d refused nothing after Redis died: it no longer limits", i)
		}
		if c := strings.Count(g.stderr.String(), "Redis unreachable"); c != 1 {
			t.Errorf("gateway %d logged %d lines about Redis going down; want 1:\n%s", i, c, g.stderr.String())
		}
	}
}

// TestRateLimitRedisStalled: a Redis that stops answering (SIGSTOP) costs a request at
// most the limiter's 100ms timeout: the gateway falls back to its own limit, every
// answer a 200 or a 429, and uses Redis again once it answers (SIGCONT).
func TestRateLimitRedisStalled(t *testing.T) {
	rds := testnet.StartRedis(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	defer origin.Close()
	g := startProxying(t, strings.TrimPrefix(origin.URL, "http://"), "-rate-limit", "50/s", "-rate-limit-redis", rds.Addr())
	var c tally
	get := func() {
		stop := make(chan struct{})
		close(stop)
		sendLoad(g.addr, 1, time.Millisecond, &c, stop)() // one request
	}
	get()
	if ok, _, failures, _ := c.take(); ok != 1 || len(failures) > 0 {
		t.Fatalf("with Redis up: %d admitted, failures %q", ok, failures)
	}

	if err := rds.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Signal(syscall.SIGCONT) })
	stop := make(chan struct{})
	wait := sendLoad(g.addr, 2, 20*time.Millisecond, &c, stop)
	waitFor(t, "the gateway to log that Redis is down", 10*time.Second, func() bool {
		return strings.Contains(g.stderr.String(), "Redis unreachable")
	})
	time.Sleep(2 * time.Second) // the length of the load on a stalled Redis: two probes
	close(stop)
	wait()
	ok, refused, failures, slowest := c.take()
	t.Logf("Redis stopped: %d admitted, %d refused, slowest answer %v", ok, refused, slowest)
	if len(failures) > 0 {
		t.Errorf("%d failed requests with Redis stopped: %q", len(failures), failures[:min(len(failures), 5)])
	}
	if ok == 0 {
		t.Error("nothing admitted with Redis stopped")
	}
	// A request waits for Redis at most its Timeout (100ms); a loaded machine adds to
	// it, but not the 10s of the client's own timeout.
	if slowest > 2*time.Second {
		t.Errorf("slowest answer %v with Redis stopped; want the limiter's timeout to bound it", slowest)
	}

	if err := rds.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the gateway to use Redis again", 15*time.Second, func() bool {
		get()
		return strings.Contains(g.stderr.String(), "Redis reachable again")
	})
	if _, _, failures, _ := c.take(); len(failures) > 0 {
		t.Errorf("failed requests after Redis came back: %q", failures)
	}
	if n := strings.Count(g.stderr.String(), "Redis unreachable"); n != 1 {
		t.Errorf("%d lines about Redis going down; want 1:\n%s", n, g.stderr.String())
	}
}
