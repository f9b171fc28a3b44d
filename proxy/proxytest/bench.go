package proxytest

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// NewRawOrigin starts a minimal keep-alive HTTP/1.1 origin on a loopback port and returns
// its address. It answers each request head it reads with the same 200 response, whose
// body is bodySize bytes of "x" with a Content-Length, and allocates nothing per
// request, so that a benchmark through a proxy measures the proxy alone. It reads no
// request bodies: send it GETs. It is stopped, its connections closed, when the test
// or benchmark ends.
func NewRawOrigin(t testing.TB, bodySize int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxytest: raw origin: %v", err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sat, 28 Nov 2026 04:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(bodySize) + "\r\n\r\n" + strings.Repeat("x", bodySize))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() { serveRaw(c, resp) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// serveRaw writes resp for each request head read from c, until c fails or sends a
// head larger than its buffer.
func serveRaw(c net.Conn, resp []byte) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
		if n == len(buf) {
			return
		}
	}
}

// NewRawClient connects to addr, the proxy under test, and returns a function that sends
// a keep-alive GET of path on that connection and reads its response, whose body is
// bodySize bytes (from [NewRawOrigin], say); each of fields ("Name: value") is added to
// the request head after Host and User-Agent. The function allocates nothing, so that
// a count of allocations around it (testing.AllocsPerRun) is the proxy's and the
// origin's; it fails t if a response does not come. The connection is closed when the
// test ends.
func NewRawClient(t testing.TB, addr, path string, bodySize int, fields ...string) func() {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	head := "GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\n"
	for _, f := range fields {
		head += f + "\r\n"
	}
	req := []byte(head + "\r\n")
	buf := make([]byte, bodySize+8<<10)
	return func() {
		if _, err := c.Write(req); err != nil {
			t.Fatalf("proxytest: writing the request: %v", err)
		}
		n := 0
		for {
			if n == len(buf) {
				t.Fatalf("proxytest: a response longer than %d bytes", len(buf))
			}
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatalf("proxytest: reading the response: %v", err)
			}
			n += m
			if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n-i-4 >= bodySize {
				return
			}
		}
	}
}

// BenchmarkGet measures one keep-alive GET of path through the proxy at addr, on one
// client connection ([NewRawClient]'s), whose response body is bodySize bytes (from
// [NewRawOrigin], say): it sends 100 requests to warm the connections and pools up,
// then reports allocations and bytes and times b.Loop. Each of fields ("Name: value")
// is added to the request head after Host and User-Agent. It fails b if a response
// does not come.
//
// It times the round trip alone: a check of the proxy after the loop (its pool's
// counts, say) should follow b.StopTimer.
func BenchmarkGet(b *testing.B, addr, path string, bodySize int, fields ...string) {
	b.Helper()
	roundTrip := NewRawClient(b, addr, path, bodySize, fields...)
	for range 100 {
		roundTrip()
	}
	b.SetBytes(int64(bodySize))
	b.ReportAllocs()
	for b.Loop() {
		roundTrip()
	}
}
