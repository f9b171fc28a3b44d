//go:build linux

package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/idle"
)

// A keep-alive connection whose requests come back to back is served hot, from its
// worker's wait: requests of every shape pass on it (a body, a head in pieces,
// pipelined ones, one sent while the one before waits on the peer); once its wait has
// lasted idle.HotWait ticks of the hot clock it goes back to parking, not a tick before,
// and still serves; Shutdown ends it at once. The test drives the hot clock.
func TestHotConnections(t *testing.T) {
	slowIn, release := make(chan struct{}), make(chan struct{})
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			select {
			case slowIn <- struct{}{}:
				<-release
			case <-t.Context().Done():
			}
		}
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	}))
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	p := manualClocks(t, svc, time.Hour)
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	expect := func(want string) {
		t.Helper()
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q\n%s", resp.StatusCode, body, want, logs.String())
		}
	}
	get := func(path string) {
		t.Helper()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		expect("GET " + path + " ")
	}

	untilHot(t, svc, 1, func() { get("/a") })

	io.WriteString(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	expect("POST /p hello")
	// (The pauses below only spread the pieces over several reads; nothing waits on them.)
	io.WriteString(c, "POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	time.Sleep(2 * time.Millisecond)
	io.WriteString(c, "3\r\nabc\r\n0\r\n\r\n")
	expect("POST /q abc")
	for _, part := range []string{"GET /b HT", "TP/1.1\r\nHo", "st: x\r\n\r\n"} {
		io.WriteString(c, part)
		time.Sleep(2 * time.Millisecond)
	}
	expect("GET /b ")
	io.WriteString(c, strings.Repeat("GET /c HTTP/1.1\r\nHost: x\r\n\r\n", 3))
	for range 3 {
		expect("GET /c ")
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-slowIn // the request above waits on the peer
	io.WriteString(c, "GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	close(release)
	expect("GET /slow ")
	expect("GET /d ")
	untilHot(t, svc, 1, func() { get("/e") })

	// Idle: the hot clock ends the wait after idle.HotWait ticks, and the connection goes
	// back to parking; it still serves.
	waitUntil(t, "a hot wait", func() bool { return hotWaiting(svc) == 1 })
	for range idle.HotWait - 1 {
		p.TickHot()
	}
	if n := hotWaiting(svc); n != 1 {
		t.Fatalf("%d hot waits after %d ticks, want 1 until %d", n, idle.HotWait-1, idle.HotWait)
	}
	p.TickHot()
	waitUntil(t, "no hot connection", func() bool { return hotConns(svc) == 0 })
	waitUntil(t, "a parked connection", func() bool { return len(parked(svc)) == 1 })
	get("/f")

	// Shutdown ends the hot connection at once.
	untilHot(t, svc, 1, func() { get("/g") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if out := waitClosed(t, c, br, 3*time.Second); out != "" {
		t.Fatalf("unexpected bytes at shutdown: %q", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// A hot connection outlives the keep-alive timeout as long as requests keep coming:
// each one it serves from its wait moves the read deadline on.
func TestHotOutlivesKeepalive(t *testing.T) {
	origin, _ := echoOrigin(t)
	const keepalive = 300 * time.Millisecond
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{KeepaliveTimeout: keepalive})
	manualClocks(t, svc, time.Hour)
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	get := func() {
		t.Helper()
		io.WriteString(c, "GET /g HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello /g" {
			t.Fatalf("got %d %q\n%s", resp.StatusCode, body, logs.String())
		}
	}
	untilHot(t, svc, 1, get)
	// A request every 20 ms for three keep-alive timeouts, on the one hot connection.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for end := time.Now().Add(3 * keepalive); time.Now().Before(end); <-pace.C {
		get()
		if n := hotConns(svc); n != 1 {
			t.Fatalf("%d hot connections, want 1", n)
		}
	}
}

// A hot connection that its client closes, or that Close cuts, ends, and leaves
// nothing behind (TestMain checks for goroutines).
func TestHotConnectionsEnd(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	manualClocks(t, svc, time.Hour)
	addr := startProxy(t, svc)
	c1, br1 := dialRaw(t, addr)
	c2, br2 := dialRaw(t, addr)
	untilHot(t, svc, 2, func() {
		for i, c := range []net.Conn{c1, c2} {
			io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readResponse(t, []*bufio.Reader{br1, br2}[i], "GET"); resp.StatusCode != 200 || body != "hello /a" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		}
	})
	c1.Close()
	waitUntil(t, "one connection left of 2", func() bool { return connCount(svc) == 1 })
	svc.Close()
	waitClosed(t, c2, br2, 3*time.Second)
}

// Connections beyond the service's bound on hot ones park between requests.
func TestHotConnectionsBounded(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	p := manualClocks(t, svc, time.Hour)
	addr := startProxy(t, svc)
	healthy(t, addr)
	p.SetMaxHot(1)
	var cs []net.Conn
	var brs []*bufio.Reader
	for range 3 {
		c, br := dialRaw(t, addr)
		cs, brs = append(cs, c), append(brs, br)
	}
	untilHot(t, svc, 1, func() {
		for i, c := range cs {
			io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, body := readResponse(t, brs[i], "GET"); resp.StatusCode != 200 || body != "hello /a" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if n := hotConns(svc); n > 1 {
				t.Fatalf("%d hot connections, bound 1", n)
			}
		}
	})
}

// manualClocks gives svc, before it runs, an idle poller whose hot clock and sweep
// tick only when the test calls TickHot and TickSweep, and whose hot gap is gap:
// time.Hour makes every request that follows a response on its connection make the
// connection hot, 0 none, however fast the machine runs the test.
func manualClocks[C any](t *testing.T, svc *Service[C], gap time.Duration) *idlePoller[C] {
	t.Helper()
	o := idleOptions(svc)
	o.ManualClocks = true
	o.HotGap = gap
	if gap == 0 {
		o.HotGap = -1 // (zero is the default gap)
	}
	p := idle.New(o)
	if p == nil {
		t.Fatal("no idle poller")
	}
	svc.mu.Lock()
	svc.idle = p
	svc.mu.Unlock()
	go p.Run()
	t.Cleanup(p.Close) // (the service's Close closes it too)
	return p
}

// untilHot runs send until want connections are hot at once, for up to 5 seconds.
func untilHot[C any](t *testing.T, svc *Service[C], want int, send func()) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		send()
		if hotConns(svc) == want {
			return
		}
	}
	t.Fatalf("%d hot connections, want %d", hotConns(svc), want)
}

// hotConns returns how many connections are served hot now.
func hotConns[C any](s *Service[C]) int {
	s.mu.Lock()
	p := s.idle
	s.mu.Unlock()
	return len(p.HotConns())
}

// hotWaiting returns how many hot connections wait for a request now (neither serving
// one nor ended by the hot clock).
func hotWaiting[C any](s *Service[C]) int {
	s.mu.Lock()
	p := s.idle
	s.mu.Unlock()
	n := 0
	for _, c := range p.HotConns() {
		if c.poll.HotWaiting() {
			n++
		}
	}
	return n
}

func connCount[C any](s *Service[C]) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
