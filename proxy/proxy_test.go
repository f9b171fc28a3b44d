package proxy

import (
	"github.com/gotthard-proxy/gotthard/internal/testnet"

	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

func echoOrigin(t testing.TB) (string, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Target", r.RequestURI)
		w.Header().Set("X-Got-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Got-Host", r.Host)
		w.Header().Set("X-Body-Len", fmt.Sprint(len(body)))
		w.Header().Set("X-Body-Sha", fmt.Sprintf("%x", sum))
		w.Header().Set("X-Got-Connection", r.Header.Get("Connection")+"|"+r.Header.Get("X-Hop"))
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		if n := r.URL.Query().Get("size"); n != "" {
			var size int
			fmt.Sscan(n, &size)
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(bytes.Repeat([]byte("x"), size))
			return
		}
		w.Write([]byte("hello " + r.URL.Path))
	}))
	// Set before Start: the server reads it from its accept loop.
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &conns
}

func TestProxyGet(t *testing.T) {
	origin, conns := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for i := range 10 {
		resp, err := cl.Get("http://" + addr + fmt.Sprintf("/p%d?q=1", i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("hello /p%d", i) {
			t.Fatalf("got %d %q", resp.StatusCode, b)
		}
		if got := resp.Header.Get("X-Target"); got != fmt.Sprintf("/p%d?q=1", i) {
			t.Fatalf("target %q", got)
		}
		if got := resp.Header.Get("X-Got-XFF"); got != "127.0.0.1" {
			t.Fatalf("X-Forwarded-For %q", got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("origin saw %d connections, want 1", n)
	}
	st := svc.PoolStats()
	if st.New != 1 || st.Reused != 9 {
		t.Fatalf("pool stats %+v", st)
	}
}

func TestProxyBodies(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	cl := testClient(t)
	for _, size := range []int{0, 1, 100, 64 << 10, 1 << 20} {
		body := bytes.Repeat([]byte("abcdefgh"), size/8+1)[:size]
		sum := fmt.Sprintf("%x", sha256.Sum256(body))
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/chunked=%v", size, chunked), func(t *testing.T) {
				resp := postBody(t, cl, "http://"+addr+"/up", body, chunked)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Header.Get("X-Body-Sha") != sum || resp.Header.Get("X-Body-Len") != fmt.Sprint(size) {
					t.Fatalf("origin got len %s", resp.Header.Get("X-Body-Len"))
				}
			})
		}
		t.Run(fmt.Sprintf("response %d", size), func(t *testing.T) {
			resp, err := cl.Get(fmt.Sprintf("http://%s/down?size=%d", addr, size))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(b) != size {
				t.Fatalf("got %d bytes, want %d", len(b), size)
			}
		})
	}
}

func TestHopByHopRemoved(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Hop, close\r\nX-Hop: secret\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 5\r\n\r\n")
	if !strings.Contains(got, "X-Got-Connection: |\r\n") {
		t.Fatalf("hop-by-hop fields reached the origin:\n%s", got)
	}
	if !strings.Contains(got, "X-Got-Xff: 127.0.0.1\r\n") {
		t.Fatalf("untrusted X-Forwarded-For kept:\n%s", got)
	}
	if !strings.Contains(got, "Connection: close\r\n") {
		t.Fatalf("no Connection: close:\n%s", got)
	}
}

type rejectProxy struct {
	fixedProxy
}

func (rejectProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	switch s.Request().Header.Get("X-Action") {
	case "deny":
		return Handled, s.Respond(403, "denied\n")
	case "panic":
		panic("boom")
	case "status":
		return Continue, StatusError(429)
	}
	return Continue, nil
}

func TestRequestFilterAnswers(t *testing.T) {
	origin, conns := echoOrigin(t)
	svc, logs := newTestService[*testCtx](t, rejectProxy{fixedProxy{peer: testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	// Several requests on one connection: a denial keeps the connection usable.
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\nX-Action: deny\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 403 || body != "denied\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	fmt.Fprintf(c, "POST /a HTTP/1.1\r\nHost: x\r\nX-Action: status\r\nContent-Length: 3\r\n\r\nabc")
	resp, _ = readResponse(t, br, "POST")
	if resp.StatusCode != 429 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	fmt.Fprintf(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body = readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello /b" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if conns.Load() != 1 {
		t.Fatalf("origin connections %d", conns.Load())
	}
	// A panic ends only its request.
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Action: panic\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 500 ") || strings.Contains(got, "boom") {
		t.Fatalf("panic answer:\n%s", got)
	}
	if !strings.Contains(logs.String(), "panic in request") {
		t.Fatalf("no log of the panic: %s", logs.String())
	}
	fmt.Fprintf(c, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body = readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello /c" {
		t.Fatalf("after panic: %d %q", resp.StatusCode, body)
	}
}

// retryProxy tries the peers in order; connect failures retry on the next.
type retryProxy struct {
	Phases[*testCtx]
	peers []*Peer
}

func (retryProxy) NewCtx() *testCtx { return &testCtx{} }
func (p retryProxy) UpstreamPeer(_ context.Context, _ *Session, c *testCtx) (*Peer, error) {
	peer := p.peers[c.n%len(p.peers)]
	c.n++
	return peer, nil
}

// deadAddr returns an address where connections are refused (testnet.DeadAddr).
func deadAddr(t testing.TB) string { return testnet.DeadAddr(t) }

func TestRetryOnConnectFailure(t *testing.T) {
	origin, _ := echoOrigin(t)
	dead := deadAddr(t)
	svc, _ := newTestService[*testCtx](t, retryProxy{peers: []*Peer{testPeer(dead), testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)
	resp, err := testClient(t).Get("http://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// With only dead peers, the client gets 502 after the retries, and a log line.
	svc2, logs := newTestService[*testCtx](t, retryProxy{peers: []*Peer{testPeer(dead)}}, ServiceOptions{MaxRetries: 2})
	addr2 := startProxy(t, svc2)
	resp, err = testClient(t).Get("http://" + addr2 + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || strings.Contains(string(b), "127.0.0.1") {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("log: %s", logs.String())
	}
}

type headerProxy struct {
	fixedProxy
}

func (headerProxy) UpstreamRequestFilter(_ context.Context, _ *Session, _ *testCtx, req *message.RequestHeader) error {
	req.Header.Set("X-Added", "1")
	return nil
}

func (headerProxy) ResponseFilter(_ context.Context, _ *Session, _ *testCtx, resp *message.ResponseHeader) error {
	resp.Header.Set("X-Proxy", "gotthard")
	resp.Header.Del("X-Body-Sha")
	return nil
}

func (headerProxy) ResponseBodyFilter(_ context.Context, _ *Session, _ *testCtx, chunk []byte, end bool) ([]byte, error) {
	return bytes.ToUpper(chunk), nil
}

func TestFiltersChangeMessages(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, headerProxy{fixedProxy{peer: testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)
	resp, err := testClient(t).Get("http://" + addr + "/abc")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HELLO /ABC" || resp.Header.Get("X-Proxy") != "gotthard" || resp.Header.Get("X-Body-Sha") != "" {
		t.Fatalf("got %q %v", b, resp.Header)
	}
}

func TestUpstreamDiesMidResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
			}()
		}
	}()
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(ln.Addr().String())}, ServiceOptions{})
	addr := startProxy(t, svc)
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "partial") {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Fatalf("log: %s", logs.String())
	}
	// A healthy request on another connection is unaffected.
	origin, _ := echoOrigin(t)
	svc2, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr2 := startProxy(t, svc2)
	if got := rawExchange(t, addr2, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(got, "hello /ok") {
		t.Fatalf("got %q", got)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.Write([]byte("done"))
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()
	// An idle keep-alive connection and an in-flight request.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := testClient(t).Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- svc.Shutdown(ctx)
	}()
	// The idle connection gets closed.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: %v", err)
	}
	close(release)
	r := <-res
	if r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// postBody POSTs body to url, with a Content-Length or, with chunked, hiding the length
// so that the client sends it chunked.
func postBody(t *testing.T, cl *http.Client, url string, body []byte, chunked bool) *http.Response {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd)
	}
	req, _ := http.NewRequest("POST", url, rd)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// countingProxy reports each request's BytesSent and BytesReceived from Logging; with
// read, RequestFilter reads the whole request body first.
type countingProxy struct {
	fixedProxy
	read   bool
	counts chan [2]int64
}

func (p countingProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.read {
		if _, err := s.BufferRequestBody(1 << 20); err != nil {
			return Continue, err
		}
	}
	return Continue, nil
}

func (p countingProxy) Logging(_ context.Context, s *Session, _ *testCtx, _ error) {
	p.counts <- [2]int64{s.BytesSent(), s.BytesReceived()}
}

// TestBytesCounted checks the body bytes a Session counts each way: streamed to the
// peer or read by a phase, with a length or chunked, and a response's.
func TestBytesCounted(t *testing.T) {
	origin, _ := echoOrigin(t)
	for _, read := range []bool{false, true} {
		counts := make(chan [2]int64, 4)
		svc, _ := newTestService[*testCtx](t, countingProxy{fixedProxy: fixedProxy{peer: testPeer(origin)}, read: read, counts: counts}, ServiceOptions{})
		addr := startProxy(t, svc)
		cl := testClient(t)
		body := bytes.Repeat([]byte("x"), 3000)
		for _, chunked := range []bool{false, true} {
			resp := postBody(t, cl, "http://"+addr+"/up", body, chunked)
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := <-counts; got != [2]int64{n, int64(len(body))} {
				t.Errorf("read=%v chunked=%v: BytesSent, BytesReceived = %v, want [%d %d]", read, chunked, got, n, len(body))
			}
		}
		resp, err := cl.Get("http://" + addr + "/down?size=5000")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := <-counts; got != [2]int64{5000, 0} {
			t.Errorf("read=%v GET: BytesSent, BytesReceived = %v, want [5000 0]", read, got)
		}
	}
}
