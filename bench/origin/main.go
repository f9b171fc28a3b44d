// Command origin is the upstream server used by the load benchmark in bench/.
//
// It serves fixed bodies over HTTP/1.1 with keep-alive:
//
//	GET /1k        1024 bytes
//	GET /100k      102400 bytes
//	GET /cache/1k  1024 bytes with Cache-Control: max-age=3600 (cacheable by a shared cache)
//
// and counts the TCP connections it accepts on -listen and the requests it
// answers there, so the benchmarks can report how many upstream connections a
// proxy opened during a run, and check that a cache answered every request of
// a run without asking the origin. The counts are served as plain text at
// /stats/conns and /stats/requests on a separate -stats listener, so that
// reading them does not change them.
//
// The origin shares a core with the load generator, so every microsecond it
// spends per request is a microsecond wrk cannot spend generating load. It is
// therefore a minimal hand-written HTTP/1.1 server: it reads the request head,
// writes a precomputed response in one write, and keeps the connection open.
// It understands exactly what the benchmark's proxies send (GET/HEAD,
// optional Content-Length bodies, Connection: close, HTTP/1.0) and answers
// anything else with 400 and closes. It is not a general-purpose server.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	maxHead     = 16 << 10        // request head limit; larger heads get 400
	idleTimeout = 5 * time.Minute // a connection idle this long is closed
)

var (
	errBadRequest = errors.New("origin: bad request")
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the bodies on")
	stats := flag.String("stats", "127.0.0.1:0", "address to serve /stats/conns on")
	h2c := flag.String("h2c", "", "address to serve the same bodies on over HTTP/2 in clear text (h2c by prior knowledge; empty: none)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("origin: ")

	s := &server{responses: map[string][]byte{
		"/1k":   response(bytes.Repeat([]byte("a"), 1024)),
		"/100k": response(bytes.Repeat([]byte("b"), 100*1024)),
		"/cache/1k": response(bytes.Repeat([]byte("c"), 1024),
			"Cache-Control: max-age=3600"),
	}}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	sln, err := net.Listen("tcp", *stats)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on %s, stats on %s", ln.Addr(), sln.Addr())

	statsMux := http.NewServeMux()
	statsMux.HandleFunc("GET /stats/conns", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, s.accepted.Load())
	})
	statsMux.HandleFunc("GET /stats/requests", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, s.requests.Load())
	})
	statsSrv := &http.Server{Handler: statsMux, ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 3)
	go func() { errc <- s.serve(ln) }()
	go func() { errc <- statsSrv.Serve(sln) }()
	var h2cSrv *http.Server
	if *h2c != "" {
		hln, err := net.Listen("tcp", *h2c)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("serving h2c on %s", hln.Addr())
		h2cSrv = s.h2cServer()
		go func() { errc <- h2cSrv.Serve(hln) }()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sg := <-sig:
		log.Printf("%v: shutting down", sg)
	case err := <-errc:
		log.Printf("serve: %v", err)
	}
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	statsSrv.Shutdown(ctx)
	if h2cSrv != nil {
		h2cSrv.Shutdown(ctx)
	}
}

// h2cServer serves the same bodies as serve, over HTTP/2 in clear text only: the
// upstream of a proxy that speaks HTTP/2 to its peers, as gRPC needs.
func (s *server) h2cServer() *http.Server {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	bodies := make(map[string][]byte, len(s.responses))
	for path, resp := range s.responses {
		bodies[path] = resp[bytes.Index(resp, []byte("\r\n\r\n"))+4:]
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, ok := bodies[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header()["Content-Type"] = []string{"application/octet-stream"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
	})
	return &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.accepted.Add(1)
			}
		}}
}

// response returns a complete 200 response carrying body, with the extra
// header lines given.
func response(body []byte, extra ...string) []byte {
	head := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	for _, h := range extra {
		head += h + "\r\n"
	}
	return append([]byte(head+"\r\n"), body...)
}

var (
	notFound   = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	badRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

type server struct {
	responses map[string][]byte // immutable after start: path -> full response
	accepted  atomic.Int64      // connections accepted since start
	requests  atomic.Int64      // requests answered since start (any status)
}

func (s *server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.accepted.Add(1)
		go s.handle(c)
	}
}

// handle serves requests on c until the peer closes it, asks to close it,
// sends something this server does not understand, or idles too long.
func (s *server) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxHead)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		resp, keep, err := s.request(br)
		if err != nil {
			if errors.Is(err, errBadRequest) {
				c.Write(badRequest)
			}
			return
		}
		s.requests.Add(1)
		if _, err := c.Write(resp); err != nil || !keep {
			return
		}
	}
}

// request reads one request head (and discards any Content-Length body) and
// returns the response to send and whether to keep the connection open.
func (s *server) request(br *bufio.Reader) (resp []byte, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errBadRequest
		}
		return nil, false, err
	}
	method, rest, ok1 := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || !(string(method) == "GET" || string(method) == "HEAD") {
		return nil, false, errBadRequest
	}
	switch string(proto) {
	case "HTTP/1.1":
		keep = true
	case "HTTP/1.0":
		keep = false
	default:
		return nil, false, errBadRequest
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	resp, found := s.responses[string(target)]
	if !found {
		resp = notFound
	}

	var bodyLen int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errBadRequest
			}
			return nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, false, errBadRequest
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			}
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return nil, false, errBadRequest
			}
			bodyLen = n
		case asciiEqualFold(name, "transfer-encoding"):
			return nil, false, errBadRequest
		}
	}
	if bodyLen > 0 {
		if _, err := io.CopyN(io.Discard, br, bodyLen); err != nil {
			return nil, false, err
		}
	}
	if string(method) == "HEAD" {
		resp = resp[:bytes.Index(resp, []byte("\r\n\r\n"))+4]
	}
	if !keep {
		// The response heads above end in a blank line; insert the header.
		i := bytes.Index(resp, []byte("\r\n\r\n"))
		closing := make([]byte, 0, len(resp)+len("Connection: close\r\n"))
		closing = append(closing, resp[:i+2]...)
		closing = append(closing, "Connection: close\r\n"...)
		resp = append(closing, resp[i+2:]...)
	}
	return resp, keep, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
