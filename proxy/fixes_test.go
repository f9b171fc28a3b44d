package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

// phaseProxy is a test proxy whose phases are set per test.
type phaseProxy struct {
	Phases[*testCtx]
	peer           *Peer
	peerErr        error
	requestFilter  func(s *Session) (Result, error)
	responseFilter func(s *Session, resp *message.ResponseHeader) error
	errorWhile     func(e *Error) *Error
}

func (phaseProxy) NewCtx() *testCtx { return &testCtx{} }

func (p phaseProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	if p.peerErr != nil {
		return nil, p.peerErr
	}
	return p.peer, nil
}

func (p phaseProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.requestFilter != nil {
		return p.requestFilter(s)
	}
	return Continue, nil
}

func (p phaseProxy) ResponseFilter(_ context.Context, s *Session, _ *testCtx, resp *message.ResponseHeader) error {
	if p.responseFilter != nil {
		return p.responseFilter(s, resp)
	}
	return nil
}

func (p phaseProxy) ErrorWhileProxy(_ context.Context, _ *Session, _ *testCtx, _ *Peer, e *Error, _ bool) *Error {
	if p.errorWhile != nil {
		return p.errorWhile(e)
	}
	return e
}

func TestRequestEdgeCases(t *testing.T) {
	origin, _ := echoOrigin(t)
	tests := []struct {
		name    string
		app     phaseProxy
		req     string
		want    []string // substrings of the response
		wantNot []string
	}{
		{
			name: "CONNECT is refused",
			req:  "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			want: []string{"HTTP/1.1 405 "},
		},
		{
			name: "absolute-form target sets Host and goes upstream in origin form",
			req:  "GET http://other.example/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
			want: []string{"X-Got-Host: other.example\r\n", "X-Target: /p?q=1\r\n"},
		},
		{
			name: "absolute-form target without a path",
			req:  "GET http://other.example?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
			want: []string{"X-Target: /?q=1\r\n"},
		},
		{
			name: "Content-Length list of equal values goes upstream as one value",
			req:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
			want: []string{"HTTP/1.1 200 ", "X-Body-Len: 3\r\n"},
		},
		{
			name: "HTTP/1.0 request without Host gets the peer's",
			req:  "GET /old HTTP/1.0\r\n\r\n",
			want: []string{"HTTP/1.1 200 ", "X-Got-Host: " + origin + "\r\n"},
		},
		{
			name: "status error from UpstreamPeer keeps its status",
			app:  phaseProxy{peerErr: StatusError(503)},
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			want: []string{"HTTP/1.1 503 "},
		},
		{
			name: "Handled without a response is an internal error",
			app:  phaseProxy{requestFilter: func(*Session) (Result, error) { return Handled, nil }},
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			want: []string{"HTTP/1.1 500 "},
		},
		{
			name: "a response written in ResponseFilter replaces the peer's",
			app: phaseProxy{responseFilter: func(s *Session, _ *message.ResponseHeader) error {
				return s.Respond(418, "teapot\n")
			}},
			req:     "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			want:    []string{"HTTP/1.1 418 ", "teapot\n"},
			wantNot: []string{"200 OK", "hello"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := tt.app
			app.peer = testPeer(origin)
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			got := rawExchange(t, addr, tt.req)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("response lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("response has %q:\n%s", w, got)
				}
			}
			if strings.Count(got, "HTTP/1.1 ") != 1 {
				t.Errorf("want exactly one response:\n%s", got)
			}
		})
	}
}

// A request without a body that reached a peer is resent only when its method is
// idempotent: a POST is not repeated even when ErrorWhileProxy asks.
func TestNoRetryOfSentNonIdempotent(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var seen atomic.Int32
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 4096)
						if n, _ := c.Read(buf); n > 0 {
							seen.Add(1)
						}
					}()
				}
			}()
			app := phaseProxy{peer: testPeer(ln.Addr().String()), errorWhile: func(e *Error) *Error {
				e.Retry = true
				return e
			}}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{MaxRetries: 2})
			addr := startProxy(t, svc)
			got := rawExchange(t, addr, method+" / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(got, "HTTP/1.1 502 ") {
				t.Fatalf("got %q", got)
			}
			want := int32(3)
			if method == "POST" {
				want = 1
			}
			if n := seen.Load(); n != want {
				t.Fatalf("origin saw %d requests, want %d", n, want)
			}
		})
	}
}

func TestConnectionCloseDuringShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	res := make(chan string, 1)
	go func() { res <- rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- svc.Shutdown(context.Background()) }()
	for !svc.closing.Load() {
		// Shutdown sets the flag first thing; wait for it without sleeping on a timer.
		runtimeGosched()
	}
	close(release)
	got := <-res
	if !strings.Contains(got, "Connection: close\r\n") {
		t.Fatalf("last response lacks Connection: close:\n%s", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// TestIdleRequestDuringShutdown: a request sent on an idle keep-alive connection just as
// a shutdown begins is answered, with Connection: close, not cut by the close of idle
// connections.
func TestIdleRequestDuringShutdown(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	time.Sleep(50 * time.Millisecond) // the connection is idle (parked)
	shut := make(chan error, 1)
	go func() { shut <- svc.Shutdown(context.Background()) }()
	for !svc.closing.Load() {
		runtimeGosched()
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("request on an idle connection during the shutdown: %d %q, Connection: close %v", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// An idempotent request on a pooled connection that the origin has just closed (without
// saying so) is resent on a new connection: the client never sees the race.
func TestStaleConnectionRetriedForGET(t *testing.T) {
	var n atomic.Int64
	origin := countingOrigin(t, &n, func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.(*net.TCPConn).CloseWrite()
	})
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	for i := range 20 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q\n%s", i, resp.StatusCode, body, logs.String())
		}
	}
}

// TestCloseWhileParking: Close right after a response, while the connection may be
// going to park in the idle poller: if Close looks before it is parked, it takes it for
// an active one and closes its socket, so the connection must end itself once parked,
// not wait for the keep-alive sweep. Close returns at once every time. (The window is
// a few hundred nanoseconds: rounds make it likely under load, not certain.)
func TestCloseWhileParking(t *testing.T) {
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	dead := testPeer(deadAddr(t))
	for i := range 100 {
		// A peer that refuses: the connection's request fails over retries, as it
		// goes to park (the case seen to hang), or one that answers.
		peer, status := testPeer(origin), 200
		if i%2 == 1 {
			peer, status = dead, 502
		}
		svc, logs := newTestService[*testCtx](t, fixedProxy{peer: peer}, ServiceOptions{KeepaliveTimeout: time.Minute, MaxRetries: 1})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- svc.Serve([]net.Listener{ln}) }()
		c, br := dialRaw(t, ln.Addr().String())
		// Two requests: the connection parks only after its first (see serve).
		for range 2 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != status {
				t.Fatalf("round %d: %d, want %d", i, resp.StatusCode, status)
			}
		}
		closed := make(chan struct{})
		go func() {
			svc.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close hangs with an idle connection\n%s", i, logs.String())
		}
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}
