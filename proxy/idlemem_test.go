package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// BenchmarkIdleConnMemory reports what an idle keep-alive client connection costs the
// process after one request: goroutine stack and heap bytes per connection (the client
// side's sockets are counted too, so the proxy's share is lower).
func BenchmarkIdleConnMemory(b *testing.B) {
	origin := rawOrigin(b, 1024)
	svc, _ := newTestService[struct{}](b, benchProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(b, svc)
	const n = 1000
	var stack, heap float64
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		stack += float64(int64(ms1.StackInuse)-int64(ms0.StackInuse)) / n
		heap += float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse)) / n
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(stack/float64(b.N), "stack-B/conn")
	b.ReportMetric(heap/float64(b.N), "heap-B/conn")
}
