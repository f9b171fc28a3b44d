package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server runs handle on every connection accepted on a loopback port, and stops and
// waits for its goroutines when the test ends.
func server(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// counter answers with the bytes it read plus skew, like tcpsink -count when skew is 0.
func counter(skew int64) func(net.Conn) {
	return func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		io.WriteString(c, strconv.FormatInt(n+skew, 10)+"\n")
	}
}

// replier reads req bytes and writes reply bytes, like tcpsink -rr.
func replier(req, reply int) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, req)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write([]byte(strings.Repeat("r", reply)))
	}
}

func testConfig(addr string) config {
	return config{addr: addr, conns: 3, bytes: 5<<20 + 1, duration: 300 * time.Millisecond,
		req: 64, reply: 64, n: 50, hold: time.Minute, timeout: 10 * time.Second}
}

func TestBulk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		skew    int64
		wantErr string
	}{
		{"every byte counted", 0, ""},
		{"a byte missing", -1, "the sink counted"},
		{"a byte too many", 1, "the sink counted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bulk(t.Context(), testConfig(server(t, counter(tc.skew))))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRR(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   int
		wantErr string
	}{
		{"exact reply", 64, ""},
		{"short reply", 63, "reply: 63 bytes of 64"},
		{"long reply", 65, "reply longer than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rr(t.Context(), testConfig(server(t, replier(64, tc.reply))))
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRRRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	if err := rr(t.Context(), testConfig(addr)); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("err %v, want dial errors", err)
	}
}

func TestIdle(t *testing.T) {
	echo := func(c net.Conn) { io.Copy(c, c) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	cfg := testConfig(server(t, echo))
	out := &lines{ready: make(chan string, 1)}
	go func() { done <- idle(ctx, cfg, out) }()
	// idle holds its connections until ctx ends (hold is a minute): once it is
	// ready, end it, and it must return at once with every connection open.
	select {
	case l := <-out.ready:
		if l != "ready 50\n" {
			t.Fatalf("first line %q, want ready 50", l)
		}
	case err := <-done:
		t.Fatalf("idle returned before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("idle was not ready in 20 s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("idle did not return after its context ended")
	}
	if got := out.String(); got != "ready 50\nopen 50\n" {
		t.Fatalf("output %q", got)
	}
}

// lines collects idle's output and sends its first line on ready.
type lines struct {
	mu    sync.Mutex
	b     strings.Builder
	ready chan string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() == 0 {
		l.ready <- string(p)
	}
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestIdleNoEcho(t *testing.T) {
	// A server that accepts and never answers: every connection fails its exchange
	// within the timeout, and idle says so.
	cfg := testConfig(server(t, func(c net.Conn) { io.Copy(io.Discard, c) }))
	cfg.n, cfg.timeout = 3, 200*time.Millisecond
	var out strings.Builder
	if err := idle(t.Context(), cfg, &out); err == nil {
		t.Fatal("idle succeeded with no echo")
	}
	if out.String() != "ready 0\nopen 0\n" {
		t.Fatalf("output %q", out.String())
	}
}
