package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// upstream answers each connection with its name, then echoes until the client's end.
func upstream(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.WriteString(c, name+":")
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestRoundRobin runs the command over two upstreams and one that refuses: every
// connection is served, by both live upstreams in turn, the bytes untouched.
func TestRoundRobin(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	ups := []string{upstream(t, "a"), deadAddr, upstream(t, "b")}

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", strings.Join(ups, ","), "-v"}, &out,
			func(a []net.Addr) { addrs <- a })
	}()
	var addr string
	select {
	case a := <-addrs:
		addr = a[0].String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}

	seen := map[string]int{}
	for i := range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := strings.Repeat("x", i*1000)
		io.WriteString(c, msg)
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		name, rest, ok := strings.Cut(string(got), ":")
		if err != nil || !ok || rest != msg {
			t.Fatalf("connection %d: %q, %v\n%s", i, got, err, out.String())
		}
		seen[name]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != 6 {
		t.Fatalf("upstreams used: %v", seen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(out.String(), "attempts=2") {
		t.Errorf("no connection was retried past the refusing upstream:\n%s", out.String())
	}
}

func TestNoUpstream(t *testing.T) {
	if err := run(context.Background(), []string{"-listen", "127.0.0.1:0"}, io.Discard, func([]net.Addr) {}); err == nil {
		t.Fatal("run without -upstream did not fail")
	}
}
