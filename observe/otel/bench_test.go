package otel_test

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gotthard-proxy/gotthard/message"
	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/otel"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// BenchmarkCycle measures the observer's events for one request with one attempt, as
// a service calls them, with the SDK's sampler dropping every trace and keeping every
// trace (recorded spans go to no exporter: the SDK's own cost of recording is in,
// the export's is not).
func BenchmarkCycle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
		parent  bool
	}{
		{"never", sdktrace.NeverSample(), false},
		{"never/traceparent", sdktrace.NeverSample(), true},
		{"always", sdktrace.AlwaysSample(), false},
		{"always/traceparent", sdktrace.AlwaysSample(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.sampler))
			defer tp.Shutdown(b.Context())
			obs, err := otel.New(otel.Options{TracerProvider: tp})
			if err != nil {
				b.Fatal(err)
			}
			in := new(message.Header)
			in.Add("Host", "example.com")
			in.Add("User-Agent", "bench/1")
			if bc.parent {
				in.Add("traceparent", clientParent)
			}
			up := new(message.Header)
			up.Add("Host", "example.com")
			up.Add("traceparent", clientParent)
			now := time.Now()
			r := &observe.Request{Proto: "HTTP/1.1", Scheme: "http", Method: "GET", Target: "/index.html?x=1",
				Host: "example.com", Client: "127.0.0.1", Header: in}
			a := &observe.Attempt{Peer: "127.0.0.1:8080"}
			b.ReportAllocs()
			for b.Loop() {
				r.Start, r.Data = now, nil
				obs.RequestStart(r)
				*a = observe.Attempt{Peer: "127.0.0.1:8080", Start: now}
				obs.AttemptStart(r, a)
				a.Proto, a.Connected = "HTTP/1.1", now
				obs.UpstreamRequest(r, a, up)
				a.End, a.Status = now, 200
				obs.AttemptEnd(r, a)
				r.End, r.Status = now, 200
				obs.RequestEnd(r)
			}
		})
	}
}

// BenchmarkBase is the same cycle through an observer that does nothing, for scale.
func BenchmarkBase(b *testing.B) {
	var obs observe.Observer = observe.Base{}
	r := &observe.Request{Method: "GET", Target: "/"}
	a := &observe.Attempt{}
	up := new(message.Header)
	b.ReportAllocs()
	for b.Loop() {
		obs.RequestStart(r)
		obs.AttemptStart(r, a)
		obs.UpstreamRequest(r, a, up)
		obs.AttemptEnd(r, a)
		obs.RequestEnd(r)
	}
}

// BenchmarkProxy measures one GET through a proxy service on loopback, its client
// connection kept alive, to an origin that answers 1 KiB, with no observer and with
// the observer sampling never and always (no exporter): the differences are the
// observer's cost on a real request, the SDK's included.
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler // nil: no observer
	}{
		{"none", nil},
		{"never", sdktrace.NeverSample()},
		{"always", sdktrace.AlwaysSample()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			origin := rawOrigin(b, 1024)
			peer, err := proxy.NewPeer(origin)
			if err != nil {
				b.Fatal(err)
			}
			opts := proxy.ServiceOptions{MaxRequestsPerConn: -1}
			if bc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(bc.sampler))
				defer tp.Shutdown(b.Context())
				obs, err := otel.New(otel.Options{TracerProvider: tp})
				if err != nil {
					b.Fatal(err)
				}
				opts.Observers = []observe.Observer{obs}
			}
			svc, err := proxy.NewService("bench", &hops{peers: []*proxy.Peer{peer}}, opts)
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
				<-served
			}()

			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /1k HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\n" +
				"traceparent: " + clientParent + "\r\n\r\n")
			buf := make([]byte, 8192)
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
					if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n-i-4 >= 1024 {
						return
					}
				}
			}
			for range 100 {
				roundTrip()
			}
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}

// rawOrigin serves, on loopback, a fixed response with a body of size bytes to each
// request head it reads, on kept-alive connections; it stops when b ends.
func rawOrigin(b *testing.B, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"),
		bytes.Repeat([]byte("x"), size)...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 { // the end of a head
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
				}
			})
		}
	})
	b.Cleanup(func() {
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
