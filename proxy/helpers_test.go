package proxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCtx is the per-request context of the test proxies.
type testCtx struct {
	n int
}

// fixedProxy proxies every request to one peer, with optional hooks.
type fixedProxy struct {
	Phases[*testCtx]
	peer *Peer
}

func (fixedProxy) NewCtx() *testCtx { return &testCtx{} }

func (p fixedProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProxy runs svc on a loopback listener until the test ends and returns its address.
func startProxy[C any](t testing.TB, svc *Service[C]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve([]net.Listener{ln}) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func newTestService[C any](t testing.TB, app ProxyHTTP[C], opts ServiceOptions) (*Service[C], *logBuffer) {
	lb := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc, err := NewService("test", app, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc, lb
}

// testPeer is NewPeer for the tests' addresses, which are valid.
func testPeer(addr string) *Peer {
	p, err := NewPeer(addr)
	if err != nil {
		panic(err)
	}
	return p
}

// startOrigin runs an HTTP/1.1 origin for the test.
func startOrigin(t testing.TB, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// testClient returns an HTTP client with its own transport, closed at the end of the test.
func testClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawExchange sends raw bytes on a new connection and returns everything read until
// the proxy closes the connection or the deadline passes.
func rawExchange(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// readResponse reads one response from br.
func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func runtimeGosched() { runtime.Gosched() }
