package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait is the deadline for any event a test waits on.
const wait = 10 * time.Second

// httpService is a ListeningService on net/http's Server: "/" answers at once, "/slow"
// answers when release is closed.
type httpService struct {
	name string
	eps  []Endpoint
	srv  *http.Server

	slowStarted     chan struct{} // closed when a /slow request arrives
	slowOnce        sync.Once
	release         chan struct{} // closed by the test to let /slow answer
	shutdownStarted chan struct{} // closed once Shutdown has closed the listeners
}

func newHTTPService(name string, eps ...Endpoint) *httpService {
	h := &httpService{
		name:            name,
		eps:             eps,
		slowStarted:     make(chan struct{}),
		release:         make(chan struct{}),
		shutdownStarted: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+h.name)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		h.slowOnce.Do(func() { close(h.slowStarted) })
		select {
		case <-h.release:
			io.WriteString(w, "slow done")
		case <-r.Context().Done():
		}
	})
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: wait}
	h.srv.RegisterOnShutdown(func() { close(h.shutdownStarted) })
	return h
}

func (h *httpService) Name() string { return h.name }
func (h *httpService) Endpoints() []net.Addr {
	var as []net.Addr
	for _, e := range h.eps {
		as = append(as, e.Addr())
	}
	return as
}

func (h *httpService) Serve(lns []net.Listener) error {
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- h.srv.Serve(ln) }()
	}
	var first error
	for range lns {
		if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

func (h *httpService) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		h.srv.Close()
	}
	return err
}

func (h *httpService) Close() error { return h.srv.Close() }

// bgService is a BackgroundService that reports its start and cancellation and fails
// when fail is sent an error.
type bgService struct {
	name     string
	started  chan struct{}
	canceled chan struct{}
	fail     chan error
}

func newBGService(name string) *bgService {
	return &bgService{name: name, started: make(chan struct{}), canceled: make(chan struct{}), fail: make(chan error, 1)}
}

func (b *bgService) Name() string { return b.name }

func (b *bgService) Run(ctx context.Context) error {
	close(b.started)
	select {
	case <-ctx.Done():
		close(b.canceled)
		return ctx.Err()
	case err := <-b.fail:
		return err
	}
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// started runs srv with ctx in a goroutine and waits for it to be ready. The returned
// channel yields Run's result.
func started(t *testing.T, ctx context.Context, srv *Server) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- srv.RunContext(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(wait):
		t.Fatal("server not ready in time")
	}
	t.Cleanup(func() {
		srv.Close()
	})
	return errc
}

// newServer returns a Server with a test logger and no signal handling, and the services
// added.
func newServer(t *testing.T, opts Options, svcs ...Service) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs {
		if err := srv.Add(svc); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// runResult waits for Run's result.
func runResult(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(wait):
		t.Fatal("Run did not return in time")
		return nil
	}
}

// waitFor waits for ch to be closed.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// client returns an HTTP client that dials network/address and keeps no idle connections.
func client(network, address string) *http.Client {
	return &http.Client{
		Timeout: wait,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, address)
			},
		},
	}
}

// get fetches path and returns the body, or an error.
func get(c *http.Client, path string) (string, error) {
	resp, err := c.Get("http://gotthard.test" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), errors.New(resp.Status)
	}
	return string(b), nil
}

// asyncGet runs get in a goroutine.
func asyncGet(c *http.Client, path string) <-chan getResult {
	ch := make(chan getResult, 1)
	go func() {
		body, err := get(c, path)
		ch <- getResult{body, err}
	}()
	return ch
}

type getResult struct {
	body string
	err  error
}

// syncBuffer is a bytes.Buffer safe for a logger writing while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until logs holds want.
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", want, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
