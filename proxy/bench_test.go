package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
)

// rawOrigin is a minimal keep-alive HTTP/1.1 origin that answers every request head with
// a fixed response, allocation-free, so that benchmarks measure the proxy alone.
func rawOrigin(tb testing.TB, bodySize int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sat, 28 Nov 2026 04:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(bodySize) + "\r\n\r\n" + string(bytes.Repeat([]byte("x"), bodySize)))
	done := make(chan struct{})
	tb.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
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
				}
			}()
		}
	}()
	return ln.Addr().String()
}

type benchProxy struct {
	Phases[struct{}]
	peer *Peer
}

func (benchProxy) NewCtx() struct{} { return struct{}{} }
func (p benchProxy) UpstreamPeer(context.Context, *Session, struct{}) (*Peer, error) {
	return p.peer, nil
}

// BenchmarkProxyGet measures one proxied keep-alive GET with a reused upstream
// connection, client and origin on loopback; allocs/op is the proxy's steady state.
func BenchmarkProxyGet(b *testing.B) { benchProxyGet(b, ServiceOptions{MaxRequestsPerConn: -1}) }

// BenchmarkProxyGetObserved is BenchmarkProxyGet with an observer that sees every event
// of each request and of its connections: what the service itself adds per request
// when observed (an observer's own work is its own; see the observe sub-packages).
func BenchmarkProxyGetObserved(b *testing.B) {
	benchProxyGet(b, ServiceOptions{MaxRequestsPerConn: -1, Observers: []observe.Observer{&countingObserver{}}})
}

func benchProxyGet(b *testing.B, opts ServiceOptions) {
	for _, size := range []int{1 << 10, 100 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			origin := rawOrigin(b, size)
			svc, _ := newTestService[struct{}](b, benchProxy{peer: testPeer(origin)}, opts)
			roundTrip := rawGetter(b, startProxy(b, svc), size)
			for range 100 {
				roundTrip()
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
			b.StopTimer()
			if st := svc.PoolStats(); st.New != 1 {
				b.Fatalf("upstream connections opened: %d", st.New)
			}
		})
	}
}

var _ = io.EOF

// rawGetter connects to addr and returns a function that sends a GET of /1k on that
// connection and reads its response, whose body is size bytes. The connection closes
// when the benchmark ends.
func rawGetter(b *testing.B, addr string, size int) func() {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	req := []byte("GET /1k HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, size+4096)
	return func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
			if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n-i-4 >= size {
				return
			}
		}
	}
}

// BenchmarkProxyGetConcurrent is BenchmarkProxyGet with 64 client connections at once,
// as in bench/run.sh: connections then take turns, served hot or parked between their
// requests, and allocs/op shows what that costs.
func BenchmarkProxyGetConcurrent(b *testing.B) {
	origin := rawOrigin(b, 1<<10)
	svc, _ := newTestService[struct{}](b, benchProxy{peer: testPeer(origin)}, ServiceOptions{MaxRequestsPerConn: -1})
	addr := startProxy(b, svc)
	req := []byte("GET /1k HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n")
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 8<<10)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n := 0
			for {
				m, err := c.Read(buf[n:])
				if err != nil {
					b.Error(err)
					return
				}
				n += m
				if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n-i-4 >= 1<<10 {
					break
				}
			}
		}
	})
}

// BenchmarkWSFramesRelay measures following the frames of a WebSocket's bytes as they
// are relayed: 4 KiB frames in reads of 16 KiB.
func BenchmarkWSFramesRelay(b *testing.B) {
	var stream []byte
	for len(stream) < 1<<20 {
		stream = append(stream, wsFrame(0x2, false, make([]byte, 4096))...)
	}
	pieces := chunks(rand.New(rand.NewPCG(5, 6)), stream, 16<<10)
	d := &wsDir{}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pieces {
			d.relay(io.Discard, p, false)
		}
	}
}
