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
)

// A keep-alive connection whose requests come back to back is served hot, from its
// worker's wait: requests of every shape pass on it (a body, a head in pieces,
// pipelined ones, one sent while the one before waits on the peer); idle for longer
// than hotGap it goes back to parking and still serves; a hot connection outlives the
// keep-alive timeout as long as requests keep coming; Shutdown ends it at once.
func TestHotConnections(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	}))
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{KeepaliveTimeout: 300 * time.Millisecond})
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
	waitHot := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for hotConns(svc) != want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := hotConns(svc); got != want {
			t.Fatalf("%d hot connections, want %d", got, want)
		}
	}

	untilHot(t, svc, 1, func() { get("/a") })

	io.WriteString(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	expect("POST /p hello")
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
	time.Sleep(10 * time.Millisecond) // the request above waits on the peer
	io.WriteString(c, "GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	expect("GET /slow ")
	expect("GET /d ")
	untilHot(t, svc, 1, func() { get("/e") })

	// Idle: back to parking; it still serves. (It leaves the hot set a moment before it
	// is in the poller's set again.)
	waitHot(0)
	for deadline := time.Now().Add(2 * time.Second); len(parked(svc)) != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := len(parked(svc)); n != 1 {
		t.Fatalf("%d parked connections, want 1", n)
	}
	get("/f")

	// Requests every few milliseconds for three keep-alive timeouts, on one connection.
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); {
		get("/g")
		time.Sleep(3 * time.Millisecond)
	}
	untilHot(t, svc, 1, func() { get("/g") })

	// Shutdown ends the hot connection at once.
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

// A hot connection that its client closes, or that Close cuts, ends, and leaves
// nothing behind (TestMain checks for goroutines).
func TestHotConnectionsEnd(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
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
	deadline := time.Now().Add(2 * time.Second)
	for connCount(svc) != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := connCount(svc); n != 1 {
		t.Fatalf("%d connections after the client closed one of 2", n)
	}
	svc.Close()
	waitClosed(t, c2, br2, 3*time.Second)
}

// Connections beyond the service's bound on hot ones park between requests.
func TestHotConnectionsBounded(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	healthy(t, addr)
	svc.mu.Lock()
	p := svc.idle
	svc.mu.Unlock()
	p.hotMu.Lock()
	p.hotMax = 1
	p.hotMu.Unlock()
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

// testIdlePoller returns a service's idle poller, not running, closed at the test's end.
func testIdlePoller(t *testing.T) (*Service[*testCtx], *idlePoller[*testCtx]) {
	t.Helper()
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer("127.0.0.1:1")}, ServiceOptions{})
	p := newIdlePoller(svc)
	if p == nil {
		t.Fatal("no idle poller")
	}
	t.Cleanup(func() { p.file.Close() })
	return svc, p
}

// TestHotJoinBounded checks the bound where it is enforced: a worker that found room
// may lose it to another before it joins, and then must not join.
func TestHotJoinBounded(t *testing.T) {
	svc, p := testIdlePoller(t)
	p.hotMax = 1
	a, b := &conn[*testCtx]{svc: svc}, &conn[*testCtx]{svc: svc}
	if !p.hotRoom() {
		t.Fatal("no room with no connection hot")
	}
	if !p.hotJoin(a) {
		t.Fatal("the first connection could not join")
	}
	if p.hotJoin(b) {
		t.Fatal("a second connection joined, bound 1")
	}
	p.hotLeave(a)
	if !p.hotJoin(b) {
		t.Fatal("no room after the first connection left")
	}
}

// TestHotTime checks the clock of hot requests against time.Now: its wall and
// monotonic readings, and that it moves.
func TestHotTime(t *testing.T) {
	_, p := testIdlePoller(t)
	before := time.Now()
	time.Sleep(20 * time.Millisecond) // the base (read at newIdlePoller) falls behind
	got := p.hotTime()
	after := time.Now()
	if got.Before(before.Add(20*time.Millisecond)) || got.After(after) {
		t.Fatalf("hotTime %v, want within [%v, %v]", got, before.Add(20*time.Millisecond), after)
	}
	// The wall reading alone (Round(0) drops the monotonic one) agrees too, within
	// what the wall clock may drift from the monotonic one in a test's time.
	if d := after.Round(0).Sub(got.Round(0)); d < -time.Millisecond || d > time.Second {
		t.Fatalf("hotTime's wall clock is %v behind time.Now's", d)
	}
	if next := p.hotTime(); next.Before(got) {
		t.Fatalf("hotTime went back: %v after %v", next, got)
	}
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
	p.hotMu.Lock()
	defer p.hotMu.Unlock()
	return len(p.hot)
}

func connCount[C any](s *Service[C]) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
