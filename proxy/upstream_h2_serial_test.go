package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// serialCtx records, for one request, whether two phases ever ran at once.
type serialCtx struct {
	in       atomic.Int32 // phases running now
	overlaps atomic.Int32
	bodyIn   chan struct{} // a RequestBodyFilter call began
	calls    int           // phase calls, counted without synchronization: -race sees overlaps too
	reqBytes int           // request body bytes RequestBodyFilter saw
}

func (c *serialCtx) enter() {
	if c.in.Add(1) != 1 {
		c.overlaps.Add(1)
	}
	c.calls++
}

func (c *serialCtx) exit() { c.in.Add(-1) }

// serialProxy proxies to peer; each phase of a request records its entry and exit on
// the request's serialCtx. UpstreamResponseFilter waits a little for a RequestBodyFilter
// call to begin meanwhile, which may happen only if phases run at the same time.
type serialProxy struct {
	Phases[*serialCtx]
	peer   *Peer
	logged chan *serialCtx
}

func (serialProxy) NewCtx() *serialCtx { return &serialCtx{bodyIn: make(chan struct{}, 1)} }

func (p serialProxy) UpstreamPeer(_ context.Context, _ *Session, c *serialCtx) (*Peer, error) {
	c.enter()
	defer c.exit()
	return p.peer, nil
}

func (serialProxy) ConnectedToUpstream(_ context.Context, _ *Session, c *serialCtx, _ *Peer, _ bool) error {
	c.enter()
	defer c.exit()
	return nil
}

func (serialProxy) RequestBodyFilter(_ context.Context, _ *Session, c *serialCtx, chunk []byte, _ bool) ([]byte, error) {
	select {
	case c.bodyIn <- struct{}{}:
	default:
	}
	c.enter()
	defer c.exit()
	c.reqBytes += len(chunk)
	return chunk, nil
}

func (serialProxy) UpstreamResponseFilter(_ context.Context, _ *Session, c *serialCtx, _ *message.ResponseHeader) error {
	c.enter()
	defer c.exit()
	select {
	case <-c.bodyIn: // (a call before this one)
	default:
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.bodyIn:
	case <-t.C:
	}
	return nil
}

func (serialProxy) ResponseFilter(_ context.Context, _ *Session, c *serialCtx, _ *message.ResponseHeader) error {
	c.enter()
	defer c.exit()
	return nil
}

func (serialProxy) UpstreamResponseBodyFilter(_ context.Context, _ *Session, c *serialCtx, chunk []byte, _ bool) ([]byte, error) {
	c.enter()
	defer c.exit()
	return chunk, nil
}

func (serialProxy) ResponseBodyFilter(_ context.Context, _ *Session, c *serialCtx, chunk []byte, _ bool) ([]byte, error) {
	c.enter()
	defer c.exit()
	return chunk, nil
}

func (serialProxy) ResponseTrailerFilter(_ context.Context, _ *Session, c *serialCtx, _ *message.Header) error {
	c.enter()
	defer c.exit()
	return nil
}

func (p serialProxy) Logging(_ context.Context, _ *Session, c *serialCtx, _ error) {
	c.enter()
	defer c.exit()
	p.logged <- c
}

// startH2OriginWith runs h as an HTTP/2 origin: h2c by prior knowledge, or over TLS.
func startH2OriginWith(t testing.TB, useTLS bool, h http.Handler) (string, *x509.CertPool) {
	srv := httptest.NewUnstartedServer(h)
	if useTLS {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		return strings.TrimPrefix(srv.URL, "https://"), pool
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), nil
}

// echoEarly answers as soon as the first KiB of the request body is in, then echoes the
// rest of the body as it comes.
func echoEarly(w http.ResponseWriter, r *http.Request) {
	first := make([]byte, 1024)
	if _, err := io.ReadFull(r.Body, first); err != nil {
		return
	}
	w.WriteHeader(200)
	w.Write(first)
	w.(http.Flusher).Flush()
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
		}
		if err != nil {
			return
		}
	}
}

// rejectEarly answers 413 once the first KiB of the request body is in, reading no more.
func rejectEarly(w http.ResponseWriter, r *http.Request) {
	first := make([]byte, 1024)
	io.ReadFull(r.Body, first)
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, "too large")
}

// helperGoroutines returns the stacks of the goroutines that the proxy starts for an
// attempt to an HTTP/2 peer.
func helperGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "proxy.(*h2Pump[") {
			found = append(found, g)
		}
	}
	return strings.Join(found, "\n\n")
}

// With an HTTP/2 peer (h2c and h2 over TLS), the phases of one request never run at the
// same time: not while the request body streams up and the peer's response, which came
// before the body's end, streams down; not when the peer rejects the body early. The
// goroutines the attempt starts are gone when the request ends.
func TestHTTP2UpstreamPhasesSerial(t *testing.T) {
	const chunks, chunkSize = 64, 1024
	for _, origin := range []struct {
		name    string
		h       http.HandlerFunc
		status  int
		reading bool // the origin reads the whole body
	}{
		{"echo-early", echoEarly, 200, true},
		{"reject-early", rejectEarly, 413, false},
	} {
		for _, useTLS := range []bool{false, true} {
			addr, roots := startH2OriginWith(t, useTLS, origin.h)
			peer := &Peer{Address: addr, Protocol: ProtoHTTP2}
			pname := "h2c"
			if useTLS {
				pname = "h2"
				peer.TLS = &PeerTLS{ServerName: "example.com", RootCAs: roots}
			}
			app := serialProxy{peer: peer, logged: make(chan *serialCtx, 1)}
			svc, logs := newTestService[*serialCtx](t, app, ServiceOptions{})
			base := "http://" + startProxy(t, svc)
			clients := map[string]*http.Client{"h1": testClient(t), "h2c": h2cClient(t)}
			for cname, cl := range clients {
				t.Run(fmt.Sprintf("%s/%s→%s", origin.name, cname, pname), func(t *testing.T) {
					pr, pw := io.Pipe()
					var sent bytes.Buffer
					var wg sync.WaitGroup
					wg.Add(1)
					go func() {
						defer wg.Done()
						chunk := make([]byte, chunkSize)
						for i := range chunks {
							for j := range chunk {
								chunk[j] = byte('a' + (i+j)%26)
							}
							if _, err := pw.Write(chunk); err != nil {
								return
							}
							sent.Write(chunk)
						}
						pw.Close()
					}()
					defer func() { pr.CloseWithError(io.ErrClosedPipe); wg.Wait() }()
					req, _ := http.NewRequest("POST", base+"/up", pr)
					req.ContentLength = -1
					resp, err := cl.Do(req)
					if err != nil {
						t.Fatalf("%v\n%s", err, logs.String())
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil && origin.reading {
						t.Fatalf("response body: %v\n%s", err, logs.String())
					}
					if resp.StatusCode != origin.status {
						t.Fatalf("status %d, want %d\n%s", resp.StatusCode, origin.status, logs.String())
					}
					var c *serialCtx
					select {
					case c = <-app.logged:
					case <-time.After(10 * time.Second):
						buf := make([]byte, 1<<22)
						t.Fatalf("the request did not end\n%s", buf[:runtime.Stack(buf, true)])
					}
					if n := c.overlaps.Load(); n > 0 {
						t.Fatalf("phases of the request ran at the same time %d times (of %d calls)", n, c.calls)
					}
					if origin.reading {
						wg.Wait()
						if !bytes.Equal(got, sent.Bytes()) || c.reqBytes != chunks*chunkSize {
							t.Fatalf("echoed %d bytes of %d; RequestBodyFilter saw %d", len(got), sent.Len(), c.reqBytes)
						}
					}
					if g := helperGoroutines(); g != "" {
						t.Fatalf("goroutines of the attempt left after the request:\n%s", g)
					}
				})
			}
		}
	}
}

// bufferingProxy buffers each request body in RequestFilter; with panicky, its
// RequestBodyFilter panics instead.
type bufferingProxy struct {
	fixedProxy
	panicky bool
}

func (p bufferingProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if !p.panicky {
		if _, err := s.BufferRequestBody(1 << 20); err != nil {
			return Continue, err
		}
	}
	return Continue, nil
}

func (p bufferingProxy) RequestBodyFilter(_ context.Context, _ *Session, _ *testCtx, chunk []byte, _ bool) ([]byte, error) {
	if p.panicky {
		panic("RequestBodyFilter fails")
	}
	return chunk, nil
}

// A buffered request body goes again, whole, with a request that an HTTP/2 peer's
// GOAWAY left unprocessed: the first connection refuses the request, the next echoes it.
func TestHTTP2UpstreamGOAWAYRetriedBufferedBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serveH2Raw(c, n == 0, func(body []byte) []byte { return body }) // an echo
		}
	}()
	app := bufferingProxy{fixedProxy: fixedProxy{peer: &Peer{Address: ln.Addr().String(), Protocol: ProtoHTTP2}}}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
	base := "http://" + startProxy(t, svc)
	body := bytes.Repeat([]byte("buffered "), 1500) // one DATA frame back
	for cname, cl := range map[string]*http.Client{"h1": testClient(t), "h2c": h2cClient(t)} {
		resp, err := cl.Post(base+"/once", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v\n%s", cname, err, logs.String())
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("%s: status %d, %d bytes back of %d (%v)\n%s", cname, resp.StatusCode, len(got), len(body), err, logs.String())
		}
	}
}

// A panic in RequestBodyFilter, with a body streamed to an HTTP/2 peer, ends that request
// only: the client gets a 500, and the proxy goes on.
func TestHTTP2UpstreamRequestBodyFilterPanic(t *testing.T) {
	addr, _ := startH2Origin(t, false)
	app := bufferingProxy{fixedProxy: fixedProxy{peer: &Peer{Address: addr, Protocol: ProtoHTTP2}}, panicky: true}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
	base := "http://" + startProxy(t, svc)
	cl := h2cClient(t)
	for range 2 {
		req, _ := http.NewRequest("POST", base+"/x", io.NopCloser(strings.NewReader("streamed body")))
		req.ContentLength = -1
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Fatalf("status %d\n%s", resp.StatusCode, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "RequestBodyFilter fails") {
		t.Fatalf("panic not logged:\n%s", logs.String())
	}
}

// A peer that never answers a request whose body streams: 504 (or 502) after the read
// timeout, counted from the body's last piece, and the attempt's goroutines end.
func TestHTTP2UpstreamStreamedBodyReadTimeout(t *testing.T) {
	silent := scriptedOrigin(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // accepts, never answers
	peer := &Peer{Address: silent, Protocol: ProtoHTTP2,
		Options: PeerOptions{ReadTimeout: 200 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond}}
	app := serialProxy{peer: peer, logged: make(chan *serialCtx, 1)}
	svc, logs := newTestService[*serialCtx](t, app, ServiceOptions{MaxRetries: -1})
	base := "http://" + startProxy(t, svc)
	req, _ := http.NewRequest("POST", base+"/x", io.NopCloser(strings.NewReader("a streamed body")))
	req.ContentLength = -1
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 504 && resp.StatusCode != 502 {
		t.Fatalf("status %d\n%s", resp.StatusCode, logs.String())
	}
	select {
	case <-app.logged:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not end")
	}
	if g := helperGoroutines(); g != "" {
		t.Fatalf("goroutines of the attempt left after the request:\n%s", g)
	}
}
