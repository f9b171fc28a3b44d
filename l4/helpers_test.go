package l4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/testnet"
)

// testCtx is the per-connection context of testApp.
type testCtx struct{ filtered bool }

// ended is what Logging saw of one connection.
type ended struct {
	err        error
	toUp       int64
	toClient   int64
	attempts   int
	peer       *Peer
	serverName string
	tlsVersion uint16
	dur        time.Duration
}

// testApp connects each connection to peers[attempt-1] (the last one for later
// attempts), retries when retry is set, and reports every end on ends.
type testApp struct {
	Phases[*testCtx]
	peers  []*Peer
	retry  bool
	filter func(s *Session) error
	ends   chan ended
}

func newTestApp(peers ...*Peer) *testApp {
	return &testApp{peers: peers, ends: make(chan ended, 64)}
}

func (a *testApp) NewCtx() *testCtx { return &testCtx{} }

func (a *testApp) ConnectionFilter(_ context.Context, s *Session, c *testCtx) error {
	c.filtered = true
	if a.filter != nil {
		return a.filter(s)
	}
	return nil
}

func (a *testApp) UpstreamPeer(_ context.Context, s *Session, c *testCtx) (*Peer, error) {
	if !c.filtered {
		return nil, errors.New("UpstreamPeer before ConnectionFilter")
	}
	return a.peers[min(s.Attempts(), len(a.peers)-1)], nil
}

func (a *testApp) FailToConnect(_ context.Context, _ *Session, _ *testCtx, _ *Peer, err *ConnectError) *ConnectError {
	err.Retry = a.retry
	return err
}

func (a *testApp) Logging(_ context.Context, s *Session, _ *testCtx, err error) {
	e := ended{err: err, toUp: s.BytesToUpstream(), toClient: s.BytesToClient(), attempts: s.Attempts(),
		peer: s.Peer(), serverName: s.ServerName(), dur: s.Duration()}
	if s.TLS() != nil {
		e.tlsVersion = s.TLS().Version
	}
	a.ends <- e
}

// next waits for the next connection's end.
func (a *testApp) next(t *testing.T) ended {
	t.Helper()
	select {
	case e := <-a.ends:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no connection ended within 10s")
		return ended{}
	}
}

// logs keeps the records of a slog.Logger for a test to read.
type logs struct {
	mu   sync.Mutex
	recs []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

func (l *logs) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// serve starts svc (endpoints added) on listeners of its own and closes it when the
// test ends; it returns the listeners' addresses.
func serve[C any](t testing.TB, svc *Service[C]) []string {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for _, ep := range svc.Endpoints() {
		ln, err := net.Listen(ep.Network(), ep.String())
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(lns) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addrs
}

// newService makes a service for app with one TCP endpoint and serves it.
func newService(t testing.TB, app ProxyTCP[*testCtx], opts ServiceOptions) (*Service[*testCtx], string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := NewService("test", app, opts)
	if err != nil {
		t.Fatal(err)
	}
	svc.AddTCP("127.0.0.1:0")
	return svc, serve(t, svc)[0]
}

// backend is a TCP server on loopback that runs handle for each connection and
// closes it after; it stops when the test ends.
func backend(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// echo copies what it reads back until the client's end, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// refusedAddr returns a loopback address where connecting is refused (testnet.DeadAddr).
func refusedAddr(t testing.TB) string {
	t.Helper()
	return testnet.DeadAddr(t)
}

// tempSock returns a path for a Unix socket in a short temporary directory.
func tempSock(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "l4")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}
