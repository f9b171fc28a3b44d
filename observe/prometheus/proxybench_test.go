package prometheus_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/prometheus"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// rawOrigin is a keep-alive HTTP/1.1 origin that answers every request head with a
// fixed response, allocation-free, so that the benchmark measures the proxy alone.
func rawOrigin(b *testing.B, bodySize int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sat, 28 Nov 2026 04:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(bodySize) + "\r\n\r\n" + string(bytes.Repeat([]byte("x"), bodySize)))
	done := make(chan struct{})
	b.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		served := make(chan struct{}, 16)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			for range conns {
				<-served
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
				defer func() { served <- struct{}{} }()
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

// benchProxy sends every request to one peer.
type benchProxy struct {
	proxy.Phases[struct{}]
	peer *proxy.Peer
}

func (benchProxy) NewCtx() struct{} { return struct{}{} }
func (p benchProxy) UpstreamPeer(context.Context, *proxy.Session, struct{}) (*proxy.Peer, error) {
	return p.peer, nil
}

// BenchmarkProxyGetPrometheus is the proxy's BenchmarkProxyGet (one proxied keep-alive
// GET of 1 KiB with a reused upstream connection, on loopback) without observers and
// with Metrics as the service's observer: allocs/op is the proxy's and the observer's
// steady state, and the difference between the two is what the metrics cost.
func BenchmarkProxyGetPrometheus(b *testing.B) {
	for _, name := range []string{"none", "prometheus"} {
		b.Run(name, func(b *testing.B) {
			const size = 1 << 10
			peer, err := proxy.NewPeer(rawOrigin(b, size))
			if err != nil {
				b.Fatal(err)
			}
			opts := proxy.ServiceOptions{MaxRequestsPerConn: -1}
			if name == "prometheus" {
				m, err := prometheus.New(prometheus.Options{})
				if err != nil {
					b.Fatal(err)
				}
				opts.Observers = []observe.Observer{m}
			}
			svc, err := proxy.NewService("bench", benchProxy{peer: peer}, opts)
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- svc.Serve([]net.Listener{ln}) }()
			defer func() {
				svc.Close()
				if err := <-served; err != nil {
					b.Errorf("Serve: %v", err)
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /1k HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n")
			buf := make([]byte, size+4096)
			roundTrip := func() {
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
			for range 100 {
				roundTrip()
			}
			b.SetBytes(size)
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
