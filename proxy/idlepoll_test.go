//go:build linux

package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Idle keep-alive connections are parked with the idle poller: they keep no goroutine,
// wake when their clients send (whole, in pieces, or pipelined), and Shutdown closes
// them. (None is served hot, and the sweep does not run: the test sees parking alone.)
func TestIdleConnectionsParked(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	manualClocks(t, svc, 0)
	addr := startProxy(t, svc)
	healthy(t, addr) // warm up: workers and upstream connections exist

	const n = 300
	before := runtime.NumGoroutine()
	cs, brs := make([]net.Conn, n), make([]*bufio.Reader, n)
	for i := range n {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello /a" {
			t.Fatalf("conn %d: %d %q", i, resp.StatusCode, body)
		}
		cs[i], brs[i] = c, br
	}
	// Each connection is parked once its response is out, the last ones a moment later.
	waitUntil(t, "all idle connections parked", func() bool { return len(parked(svc)) >= n })
	if extra := runtime.NumGoroutine() - before; extra > n/10 {
		t.Fatalf("%d more goroutines with %d idle connections", extra, n)
	}

	// They wake for a second request: whole, in pieces, or two pipelined.
	for i, c := range cs {
		switch i % 3 {
		case 0:
			io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
		case 1:
			for _, part := range []string{"GET /b HT", "TP/1.1\r\nHo", "st: x\r\n\r\n"} {
				io.WriteString(c, part)
				time.Sleep(time.Millisecond) // (spreads the pieces over reads; nothing waits on it)
			}
		case 2:
			io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	for i, br := range brs {
		for range 1 + i%3/2 {
			if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello /b" {
				t.Fatalf("conn %d, second request: %d %q\n%s", i, resp.StatusCode, body, logs.String())
			}
		}
	}

	// Shutdown closes the parked connections at once.
	waitUntil(t, "all idle connections parked again", func() bool { return len(parked(svc)) >= n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, c := range cs {
		if out := waitClosed(t, c, brs[i], 3*time.Second); strings.TrimSpace(out) != "" {
			t.Fatalf("conn %d: unexpected bytes at shutdown: %q", i, out)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// The sweep closes a connection parked for the keep-alive timeout: wait ticks of its
// clock after the one it was parked at, it is still open, and the next closes it; a
// connection parked since is left alone. The test drives the sweep.
func TestIdleSweep(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
		ServiceOptions{KeepaliveTimeout: 300 * time.Millisecond})
	p := manualClocks(t, svc, 0)
	addr := startProxy(t, svc)
	dial := func() (net.Conn, *bufio.Reader) {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "hello /a" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		return c, br
	}
	period, wait := p.SweepPeriod()
	if period*time.Duration(wait) < 300*time.Millisecond { // parked just before a tick
		t.Fatalf("%d ticks of %v: before the keep-alive timeout", wait, period)
	}
	old, oldBR := dial()
	waitUntil(t, "a parked connection", func() bool { return len(parked(svc)) == 1 })
	for range wait - 1 {
		p.TickSweep()
	}
	young, youngBR := dial() // parked wait-1 ticks after the first one
	waitUntil(t, "two parked connections", func() bool { return len(parked(svc)) == 2 })
	p.TickSweep()
	if n := connCount(svc); n != 2 {
		t.Fatalf("%d connections after %d ticks, want 2 until %d", n, wait, wait+1)
	}
	p.TickSweep()
	if out := waitClosed(t, old, oldBR, 3*time.Second); out != "" {
		t.Fatalf("unexpected bytes at the keep-alive timeout: %q", out)
	}
	if n := connCount(svc); n != 1 {
		t.Fatalf("%d connections after the first one's timeout, want 1", n)
	}
	// The younger one serves on, and is parked anew.
	io.WriteString(young, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, youngBR, "GET"); resp.StatusCode != 200 || body != "hello /b" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// parked returns the service's connections parked now.
func parked[C any](s *Service[C]) []*conn[C] {
	s.mu.Lock()
	p := s.idle
	s.mu.Unlock()
	var cs []*conn[C]
	for _, c := range p.Conns() {
		if c.park.Load()&parkedBit != 0 {
			cs = append(cs, c)
		}
	}
	return cs
}
