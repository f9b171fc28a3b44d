package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// childCounter is a context whose children attach through its AfterFunc method (the
// context package uses it for a parent it does not know), so that a test can count the
// children still attached: a child context that is never cancelled stays attached, and
// held in memory, for the parent's lifetime.
type childCounter struct {
	done  chan struct{}
	mu    sync.Mutex
	next  int
	funcs map[int]func()
}

func newChildCounter() *childCounter {
	return &childCounter{done: make(chan struct{}), funcs: map[int]func(){}}
}

func (c *childCounter) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *childCounter) Done() <-chan struct{}       { return c.done }
func (c *childCounter) Value(any) any               { return nil }

func (c *childCounter) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// AfterFunc registers f, run when c is cancelled, until the returned stop is called.
func (c *childCounter) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	id := c.next
	c.funcs[id] = f
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[id]
		delete(c.funcs, id)
		return ok
	}
}

// attached returns the number of children attached.
func (c *childCounter) attached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.funcs)
}

func (c *childCounter) cancel() {
	c.mu.Lock()
	fs := c.funcs
	c.funcs = map[int]func(){}
	close(c.done)
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// loggedProxy is fixedProxy that reports each request's end (its Logging phase, which
// runs once the attempt's deferred work is done) on logged.
type loggedProxy struct {
	fixedProxy
	logged chan struct{}
}

func (p loggedProxy) Logging(context.Context, *Session, *testCtx, error) { p.logged <- struct{}{} }

// Requests to an HTTP/2 peer with a TotalTimeout leave no child context attached to the
// service's context once they are over.
func TestHTTP2UpstreamTotalTimeoutNoContextLeft(t *testing.T) {
	addr, _ := startH2Origin(t, false)
	peer := &Peer{Address: addr, Protocol: ProtoHTTP2, Options: PeerOptions{TotalTimeout: time.Minute}}
	app := loggedProxy{fixedProxy{peer: peer}, make(chan struct{}, 1)}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
	parent := newChildCounter()
	svc.ctx = parent
	t.Cleanup(parent.cancel) // (after the service is closed: cleanups run last first)
	base := "http://" + startProxy(t, svc)
	cl := testClient(t)
	const n = 20
	for range n {
		resp, err := cl.Get(base + "/x?size=10")
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d\n%s", resp.StatusCode, logs.String())
		}
		select {
		case <-app.logged:
		case <-time.After(10 * time.Second):
			t.Fatal("the request did not end")
		}
	}
	if k := parent.attached(); k > 0 {
		t.Fatalf("%d child contexts of %d requests still attached to the service's context", k, n)
	}
}

// errLoggedProxy is fixedProxy that reports each request's error and status on logged.
type errLoggedProxy struct {
	fixedProxy
	logged chan string
}

func (p errLoggedProxy) Logging(_ context.Context, s *Session, _ *testCtx, err error) {
	p.logged <- fmt.Sprint(s.Status(), " ", err)
}

// An HTTP/2 client that resets its stream while the connection to an HTTP/2 peer is
// being made cuts that dial: the proxy does not wait for the peer's handshake, up to
// the connect timeout, for nobody.
func TestHTTP2UpstreamDialCutWhenClientLeaves(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept() // and never a SETTINGS frame: the handshake waits
		if err == nil {
			accepted <- c
		}
	}()
	peer := &Peer{Address: ln.Addr().String(), Protocol: ProtoHTTP2, Options: PeerOptions{ConnectTimeout: time.Minute}}
	app := errLoggedProxy{fixedProxy{peer: peer}, make(chan string, 1)}
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := h2cClient(t).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	var up net.Conn
	select {
	case up = <-accepted:
		defer up.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not connect to the peer")
	}
	time.Sleep(50 * time.Millisecond) // (the handshake is under way)
	cancel()                          // RST_STREAM(CANCEL)
	<-done
	select {
	case got := <-app.logged:
		if !strings.HasPrefix(got, "499 ") {
			t.Fatalf("Logging got %q, want the client's leaving (499)\n%s", got, logs.String())
		}
	case <-time.After(3 * time.Second): // (the handshake's own limit is longer)
		t.Fatalf("the request did not end when its client left during the dial\n%s", logs.String())
	}
	// The half-made connection is closed, not kept for its connect timeout.
	up.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(io.Discard, up); err != nil {
		t.Fatalf("the peer's side of the cut dial: %v, want its end", err)
	}
}
