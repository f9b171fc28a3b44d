// Package demo is the small origin server the examples start when no upstream is given,
// so that they run as they are.
package demo

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Origin is a running demo origin.
type Origin struct {
	srv *http.Server
	ln  net.Listener
}

// Start runs a demo origin on a free loopback port. Its routes:
//
//	/            a greeting that shows what the origin received
//	/1k, /100k   1 KiB and 100 KiB of bytes
//	/bytes?n=N   N bytes (at most 64 MiB)
//	/echo        the request body back
//	/status?code=N  an empty response with that status
func Start(name string) (*Origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo origin: %w", err)
	}
	kb := bytes.Repeat([]byte("gotthard"), 128)
	hundred := bytes.Repeat(kb, 100)
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from the %s demo origin.\n\n", name)
		fmt.Fprintf(w, "It received: %s %s %s\n", r.Method, r.RequestURI, r.Proto)
		fmt.Fprintf(w, "Host: %s\n", r.Host)
		for _, k := range []string{"User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via"} {
			if v := r.Header.Get(k); v != "" {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
	})
	mux.HandleFunc("/1k", func(w http.ResponseWriter, r *http.Request) { w.Write(kb) })
	mux.HandleFunc("/100k", func(w http.ResponseWriter, r *http.Request) { w.Write(hundred) })
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "n must be 0..67108864", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			m := min(n, len(hundred))
			if _, err := w.Write(hundred[:m]); err != nil {
				return
			}
			n -= m
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 200 || code > 599 {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
	})
	o := &Origin{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:  ln,
	}
	go o.srv.Serve(ln)
	return o, nil
}

// Addr returns the origin's "host:port".
func (o *Origin) Addr() string { return o.ln.Addr().String() }

// Close stops the origin.
func (o *Origin) Close() error { return o.srv.Close() }
