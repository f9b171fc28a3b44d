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
// them.
func TestIdleConnectionsParked(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
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
	// Each connection is parked once its response is out; give the last ones a moment.
	deadline := time.Now().Add(5 * time.Second)
	for len(parked(svc)) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(parked(svc)); got < n {
		t.Fatalf("%d of %d idle connections parked", got, n)
	}
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
				time.Sleep(time.Millisecond)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(parked(svc)) < n && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
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

// parked returns the service's connections parked now.
func parked[C any](s *Service[C]) []*conn[C] {
	s.mu.Lock()
	p := s.idle
	s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	var cs []*conn[C]
	for _, pc := range p.conns {
		if pc.c.park.Load()&parkedBit != 0 {
			cs = append(cs, pc.c)
		}
	}
	return cs
}
