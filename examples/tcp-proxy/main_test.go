package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	gtls "github.com/gotthard-proxy/gotthard/tls"
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

// tlsUpstream is a TLS server for name that answers each connection with its name.
func tlsUpstream(t *testing.T, name string) string {
	t.Helper()
	certPEM, keyPEM, err := gtls.SelfSigned([]string{name}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.WriteString(c, name)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestSNIRouting: TLS connections on -sni-listen reach the backend of their server
// name, which does the handshake itself.
func TestSNIRouting(t *testing.T) {
	a, b := tlsUpstream(t, "a.example"), tlsUpstream(t, "b.example")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", upstream(t, "plain"),
			"-sni-listen", "127.0.0.1:0", "-sni", "a.example=" + a + ",b.example=" + b}, &out,
			func(a []net.Addr) { addrs <- a })
	}()
	var sniAddr string
	select {
	case as := <-addrs:
		if len(as) != 2 {
			t.Fatalf("addresses %v", as)
		}
		sniAddr = as[1].String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	for _, name := range []string{"a.example", "b.example", "a.example"} {
		c, err := tls.Dial("tcp", sniAddr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out.String())
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		peer := c.ConnectionState().PeerCertificates[0].DNSNames
		c.Close()
		if string(got) != name || len(peer) != 1 || peer[0] != name {
			t.Errorf("%s: answered %q by a certificate for %v", name, got, peer)
		}
	}
	if _, err := tls.Dial("tcp", sniAddr, &tls.Config{ServerName: "c.example", InsecureSkipVerify: true}); err == nil {
		t.Error("a server name with no backend was served")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestAdmin runs the command with -admin: its /metrics counts the TCP connections, and
// the status page's data lists the service.
func TestAdmin(t *testing.T) {
	up := upstream(t, "a")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	addrs := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", up, "-admin", "127.0.0.1:0"}, &out,
			func(a []net.Addr) { addrs <- a })
	}()
	var proxyAddr, adminAddr string
	select {
	case a := <-addrs:
		if len(a) != 2 {
			t.Fatalf("ready with %v, want the proxy's and the admin service's addresses", a)
		}
		proxyAddr, adminAddr = a[0].String(), a[1].String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "a:ping" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	c.Close()
	cl := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) string {
		resp, err := cl.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	want := []string{
		`gotthard_connections_open{service="tcp-proxy"} 0`,
		`gotthard_upstream_connections_total{service="tcp-proxy"} 1`,
		`gotthard_sent_bytes_total{service="tcp-proxy"} 6`,     // "a:ping"
		`gotthard_received_bytes_total{service="tcp-proxy"} 4`, // "ping"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := get("/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(m, w+"\n") {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s:\n%s", missing, m)
		}
		time.Sleep(20 * time.Millisecond) // (the connection's close may still be on its way)
	}
	if s := get("/status.json"); !strings.Contains(s, `"tcp-proxy"`) {
		t.Fatalf("/status.json does not list the service:\n%s", s)
	}
}
