package accesslog_test

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gotthard-proxy/gotthard/observe"
	"github.com/gotthard-proxy/gotthard/observe/accesslog"
	"github.com/gotthard-proxy/gotthard/proxy"
)

// BenchmarkProxy measures a keep-alive GET through a real proxy on loopback to an
// origin answering 1 KiB, without an access log and with one in each format, written
// to a file: the difference is the access log's cost per request.
func BenchmarkProxy(b *testing.B) {
	origin := rawOrigin(b, 1<<10)
	peer, err := proxy.NewPeer(origin)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"none", "combined", "json"} {
		b.Run(name, func(b *testing.B) {
			var obs []observe.Observer
			if name != "none" {
				f, _ := accesslog.ParseFormat(name)
				alog, err := accesslog.New(accesslog.Options{Path: filepath.Join(b.TempDir(), "access.log"), Format: f})
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					if alog.Dropped() != 0 {
						b.Errorf("%d lines dropped", alog.Dropped())
					}
					alog.Close()
				}()
				obs = append(obs, alog)
			}
			svc, err := proxy.NewService("bench", &app{origin: peer}, proxy.ServiceOptions{
				Observers: obs, MaxRequestsPerConn: -1, Logger: slog.New(slog.DiscardHandler),
			})
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
			req := []byte("GET /bench?x=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1.0\r\nReferer: http://bench/\r\n\r\n")
			buf := make([]byte, 8<<10)
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
					if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n-i-4 >= 1<<10 {
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

// rawOrigin serves a fixed response with a body of size bytes to every request, on
// keep-alive connections, until the benchmark ends; it returns its address.
func rawOrigin(b *testing.B, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(size) + "\r\n\r\n" + strings.Repeat("x", size))
	var wg sync.WaitGroup
	conns := make(map[net.Conn]bool)
	var mu sync.Mutex
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 4096)
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
			})
		}
	})
	b.Cleanup(func() {
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
