package l4

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// heldBackend is a TCP server on loopback that hands each accepted connection to the
// test, which talks on it itself: no goroutine per connection, so that a test can
// count the proxy's. The connections are closed when the test ends.
func heldBackend(t testing.TB) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), conns
}

// accept waits for the backend's next connection.
func accept(t testing.TB, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no connection within 10s")
		return nil
	}
}

// parkedHalves counts the directions of svc's connections that are parked.
func parkedHalves[C any](svc *Service[C]) int {
	svc.mu.Lock()
	cs := slices.Clone(svc.conns)
	svc.mu.Unlock()
	n := 0
	for _, c := range cs {
		c.mu.Lock()
		f := c.copying()
		c.mu.Unlock()
		if f == nil {
			continue
		}
		f.mu.Lock()
		for i := range f.halves {
			if f.halves[i].state == halfParked {
				n++
			}
		}
		f.mu.Unlock()
	}
	return n
}

// detachedConns counts svc's connections whose sockets are detached from the
// runtime's poller.
func detachedConns[C any](svc *Service[C]) int {
	svc.mu.Lock()
	cs := slices.Clone(svc.conns)
	svc.mu.Unlock()
	n := 0
	for _, c := range cs {
		c.mu.Lock()
		f := c.copying()
		c.mu.Unlock()
		if f == nil {
			continue
		}
		f.attachMu.Lock()
		if f.detached {
			n++
		}
		f.attachMu.Unlock()
	}
	return n
}

// waitUntil waits until cond holds, for at most 20s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// exchange sends b from one end to the other and checks it arrives.
func exchange(t testing.TB, from, to net.Conn, b []byte) {
	t.Helper()
	from.SetDeadline(time.Now().Add(10 * time.Second))
	to.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := from.Write(b); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(b))
	if _, err := io.ReadFull(to, got); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("sent %q, got %q (%v)", b, got, err)
	}
}

// connect opens a connection through the proxy at addr to the held backend, and moves
// a byte each way so that both directions have run.
func connect(t testing.TB, addr string, conns <-chan net.Conn, tag byte) (client, peer net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{tag}); err != nil {
		t.Fatal(err)
	}
	p := accept(t, conns)
	got := make([]byte, 1)
	p.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(p, got); err != nil || got[0] != tag {
		t.Fatalf("peer got %q (%v), want %q", got, err, tag)
	}
	exchange(t, p, c, []byte{tag})
	return c, p
}

// busyGoroutines returns the number of goroutines but those svc keeps idle for its
// next connections, which are not any connection's.
func busyGoroutines[C any](svc *Service[C]) int {
	return runtime.NumGoroutine() - svc.copyCfg.gos.Idle()
}

// TestIdleConnsPark holds 2,000 idle connections through the service and checks that
// they hold no goroutine (both directions of each parked), that a byte still goes each
// way on them after the wait, and that each one's end and bytes reach Logging.
func TestIdleConnsPark(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	peerAddr, accepted := heldBackend(t)
	app := newTestApp(&Peer{Address: peerAddr})
	app.ends = make(chan ended, n+16)
	svc, addr := newService(t, app, ServiceOptions{})
	connect(t, addr, accepted, 0) // the service has served; its poller runs
	waitUntil(t, "the first connection parked", func() bool { return parkedHalves(svc) == 2 })
	base := busyGoroutines(svc)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	clients, peers := make([]net.Conn, n), make([]net.Conn, n)
	for i := range n {
		clients[i], peers[i] = connect(t, addr, accepted, byte(i))
	}
	waitUntil(t, "every connection parked", func() bool { return parkedHalves(svc) == 2*(n+1) })
	waitUntil(t, "every connection detached", func() bool { return detachedConns(svc) == n+1 })
	if g := busyGoroutines(svc) - base; g > 16 {
		t.Fatalf("%d idle connections hold %d goroutines, want none", n, g)
	}
	runtime.ReadMemStats(&ms1)
	t.Logf("%d parked connections: %+.0f B of heap in use and %+.0f B of stacks per connection",
		n, float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/float64(n),
		float64(int64(ms1.StackInuse)-int64(ms0.StackInuse))/float64(n))

	// After the wait, bytes go both ways; then both sides close and Logging counts.
	const step = 50
	for i := 0; i < n; i += step {
		exchange(t, clients[i], peers[i], []byte("up"))
		exchange(t, peers[i], clients[i], []byte("down!"))
	}
	for i := 0; i < n; i += step {
		clients[i].Close()
		peers[i].Close()
	}
	for i := 0; i < n; i += step {
		e := app.next(t)
		if e.err != nil && !errors.Is(e.err, syscall.ECONNRESET) || e.toUp != 3 || e.toClient != 6 {
			t.Fatalf("Logging: %v, %d bytes up and %d down, want 3 and 6", e.err, e.toUp, e.toClient)
		}
	}
	waitUntil(t, "the rest parked again", func() bool { return parkedHalves(svc) == 2*(n+1-n/step) })
	waitUntil(t, "the rest detached again", func() bool { return detachedConns(svc) == n+1-n/step })
	if g := busyGoroutines(svc) - base; g > 16 {
		t.Fatalf("%d idle connections hold %d goroutines after some woke, want none", n, g)
	}
}

// TestParkedHalfClose checks that the end of one side of a parked connection is
// carried to the other (a FIN), and that the other direction goes on until its end.
func TestParkedHalfClose(t *testing.T) {
	for _, first := range []string{"client", "peer"} {
		t.Run(first+" first", func(t *testing.T) {
			peerAddr, accepted := heldBackend(t)
			app := newTestApp(&Peer{Address: peerAddr})
			svc, addr := newService(t, app, ServiceOptions{})
			c, p := connect(t, addr, accepted, 'a')
			waitUntil(t, "parked", func() bool { return parkedHalves(svc) == 2 })
			closer, other := c, p
			if first == "peer" {
				closer, other = p, c
			}
			closer.(*net.TCPConn).CloseWrite()
			other.SetDeadline(time.Now().Add(10 * time.Second))
			if n, err := other.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the %s's FIN: read %d, %v; want EOF", first, n, err)
			}
			// The other way is still open, and parks again.
			waitUntil(t, "the open direction parked", func() bool { return parkedHalves(svc) == 1 })
			exchange(t, other, closer, []byte("late"))
			other.Close()
			closer.SetDeadline(time.Now().Add(10 * time.Second))
			if n, err := closer.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the other's close: read %d, %v; want EOF", n, err)
			}
			e := app.next(t)
			up, down := int64(1), int64(1+4)
			if first == "peer" {
				up, down = 1+4, 1
			}
			if e.err != nil || e.toUp != up || e.toClient != down {
				t.Fatalf("Logging: %v, %d up, %d down; want nil, %d, %d", e.err, e.toUp, e.toClient, up, down)
			}
		})
	}
}

// TestParkedTimeouts checks that a parked connection still ends at its idle timeout
// (by the poller's sweep) and at its total timeout (by a timer).
func TestParkedTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    ServiceOptions
		want    error
		lo, hi  time.Duration
		cleanly bool
	}{
		{"idle", ServiceOptions{IdleTimeout: 600 * time.Millisecond}, ErrIdleTimeout, 600 * time.Millisecond, 2 * time.Second, true},
		{"total", ServiceOptions{IdleTimeout: -1, TotalTimeout: 800 * time.Millisecond}, ErrTotalTimeout, 800 * time.Millisecond, 2 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peerAddr, accepted := heldBackend(t)
			app := newTestApp(&Peer{Address: peerAddr})
			svc, addr := newService(t, app, tc.opts)
			c, p := connect(t, addr, accepted, 'a')
			waitUntil(t, "parked", func() bool { return parkedHalves(svc) == 2 })
			e := app.next(t)
			if !errors.Is(e.err, tc.want) || e.dur < tc.lo || e.dur > tc.hi {
				t.Fatalf("Logging: %v after %v; want %v after %v to %v", e.err, e.dur, tc.want, tc.lo, tc.hi)
			}
			for _, end := range []net.Conn{c, p} {
				end.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadAll(end); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("after the timeout: %v", err)
				}
			}
		})
	}
}

// TestParkedShutdown checks that Close, and a Shutdown whose context ends, cut parked
// connections (and that none leaks: TestMain checks goroutines).
func TestParkedShutdown(t *testing.T) {
	for _, how := range []string{"Close", "Shutdown", "CloseStreams"} {
		t.Run(how, func(t *testing.T) {
			peerAddr, accepted := heldBackend(t)
			app := newTestApp(&Peer{Address: peerAddr})
			svc, addr := newService(t, app, ServiceOptions{})
			const n = 3
			var clients []net.Conn
			for i := range n {
				c, _ := connect(t, addr, accepted, byte('a'+i))
				clients = append(clients, c)
			}
			waitUntil(t, "parked", func() bool { return parkedHalves(svc) == 2*n })
			switch how {
			case "Close":
				svc.Close()
			case "CloseStreams":
				svc.CloseStreams()
			case "Shutdown":
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if err := svc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Shutdown: %v, want the context's deadline", err)
				}
			}
			for range n {
				if e := app.next(t); !errors.Is(e.err, ErrShutdown) {
					t.Fatalf("Logging: %v, want ErrShutdown", e.err)
				}
			}
			for _, c := range clients {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("client after the cut: %v", err)
				}
			}
		})
	}
}

// TestParkedMaxConns checks that a parked connection keeps its slot: at MaxConns, the
// next client waits until it ends.
func TestParkedMaxConns(t *testing.T) {
	peerAddr, accepted := heldBackend(t)
	app := newTestApp(&Peer{Address: peerAddr})
	svc, addr := newService(t, app, ServiceOptions{MaxConns: 1})
	first, firstPeer := connect(t, addr, accepted, 'a')
	waitUntil(t, "parked", func() bool { return parkedHalves(svc) == 2 })
	second, err := net.Dial("tcp", addr) // the kernel completes it; the service does not accept
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-accepted:
		t.Fatalf("the connection over the limit reached the backend (%v)", p.RemoteAddr())
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	firstPeer.Close()
	if e := app.next(t); e.err != nil && !errors.Is(e.err, syscall.ECONNRESET) {
		t.Fatalf("first connection: %v", e.err)
	}
	p := accept(t, accepted)
	p.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(p, b); err != nil || b[0] != 'b' {
		t.Fatalf("the waiting connection, once a slot freed: %q, %v", b, err)
	}
}

// TestWhichConnsPark checks which connections may park: plain TCP on both sides only.
// A TLS side keeps its goroutines (a tls.Conn may hold decrypted bytes that its
// socket's readiness does not show), as do a Unix socket and a passthrough client.
func TestWhichConnsPark(t *testing.T) {
	srvCfg, pool := testCerts(t, "proxy.test", "peer.test", "127.0.0.1")
	peerAddr, accepted := heldBackend(t)
	app := newTestApp(&Peer{Address: peerAddr})
	svc, err := NewService("t", app, ServiceOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	svc.AddUnix(tempSock(t, "svc.sock"))
	svc.AddTLS("127.0.0.1:0", srvCfg)
	addrs := serve(t, svc)
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
		park bool
	}{
		{"tcp", func() (net.Conn, error) { return net.Dial("tcp", addrs[0]) }, true},
		{"unix", func() (net.Conn, error) { return net.Dial("unix", addrs[1]) }, false},
		{"tls", func() (net.Conn, error) {
			return tls.Dial("tcp", addrs[2], &tls.Config{ServerName: "proxy.test", RootCAs: pool})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := accept(t, accepted)
			exchange(t, c, p, []byte("x"))
			svc.mu.Lock()
			var f *flow
			for _, sc := range svc.conns {
				sc.mu.Lock()
				if sc.started && !sc.finished {
					f = &sc.f
				}
				sc.mu.Unlock()
			}
			svc.mu.Unlock()
			if f == nil {
				t.Fatal("no connection copying")
			}
			f.mu.Lock()
			got := [2]bool{f.halves[0].parkable, f.halves[1].parkable}
			f.mu.Unlock()
			if got != [2]bool{tc.park, tc.park} {
				t.Fatalf("directions may park: %v, want %v", got, tc.park)
			}
			c.Close()
			p.Close()
			app.next(t)
		})
	}
}

// TestParkedStalledWriter checks the idle timeout of a connection whose peer does not
// read: the client-to-peer direction blocks writing, the other parks, and the sweep
// cuts the connection once nothing was counted for 2×IdleTimeout.
func TestParkedStalledWriter(t *testing.T) {
	const idle = 300 * time.Millisecond
	peerAddr, accepted := heldBackend(t)
	app := newTestApp(&Peer{Address: peerAddr})
	svc, addr := newService(t, app, ServiceOptions{IdleTimeout: idle})
	c, _ := connect(t, addr, accepted, 'a') // the peer reads no more after this
	waitUntil(t, "parked", func() bool { return parkedHalves(svc) == 2 })
	wrote := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
	}()
	e := app.next(t)
	if !errors.Is(e.err, ErrIdleTimeout) || e.toUp == 0 {
		t.Fatalf("Logging: %v after %d bytes up; want ErrIdleTimeout", e.err, e.toUp)
	}
	c.Close()
	if err := <-wrote; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the client's writes were never cut")
	}
}

// TestDetachAttach checks a connection whose sockets were detached from the runtime's
// poller: bytes go both ways after, on sockets made again without keep-alive probes,
// which the connection's abort then closes; it detaches again when idle again.
func TestDetachAttach(t *testing.T) {
	peerAddr, accepted := heldBackend(t)
	app := newTestApp(&Peer{Address: peerAddr})
	svc, addr := newService(t, app, ServiceOptions{})
	c, p := connect(t, addr, accepted, 'a')
	waitUntil(t, "detached", func() bool { return detachedConns(svc) == 1 })
	exchange(t, c, p, []byte("up"))
	exchange(t, p, c, []byte("down"))

	svc.mu.Lock()
	var sc *conn[*testCtx]
	for _, x := range svc.conns {
		sc = x
	}
	svc.mu.Unlock()
	sc.mu.Lock()
	f, client, up := sc.copying(), sc.client, sc.up
	sc.mu.Unlock()
	f.attachMu.Lock()
	attached := !f.detached && f.client == client && f.up == up
	f.attachMu.Unlock()
	if !attached {
		t.Fatal("after bytes moved, the connection's sockets are not the copy's attached ones")
	}
	for _, nc := range []net.Conn{client, up} {
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			t.Fatalf("socket attached again is a %T", nc)
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var ka int
		var kerr error
		rc.Control(func(fd uintptr) { ka, kerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
		if kerr != nil || ka != 0 {
			t.Fatalf("SO_KEEPALIVE %d (%v) on a socket attached again, want 0", ka, kerr)
		}
	}
	waitUntil(t, "detached again", func() bool { return detachedConns(svc) == 1 })
	exchange(t, c, p, []byte("again"))
	svc.CloseStreams() // cuts the attached sockets
	if e := app.next(t); !errors.Is(e.err, ErrShutdown) || e.toUp != 1+2+5 || e.toClient != 1+4 {
		t.Fatalf("Logging: %v, %d up, %d down; want ErrShutdown, 8, 5", e.err, e.toUp, e.toClient)
	}
	for _, end := range []net.Conn{c, p} {
		end.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(end); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the cut: %v", err)
		}
	}
}
