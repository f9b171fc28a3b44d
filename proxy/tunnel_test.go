package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEchoOrigin is a WebSocket origin that echoes every message, and closes with
// status 4000 when it receives the text "close-from-server".
func wsEchoOrigin(t *testing.T) string {
	_, addr := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.SetReadLimit(2 << 20)
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if typ == websocket.MessageText && string(msg) == "close-from-server" {
				c.Close(4000, "bye")
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}))
	return addr
}

func TestWebSocketThroughProxy(t *testing.T) {
	origin := wsEchoOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, logs.String())
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	exchangeWSMessages(t, ctx, c, wsMessages())

	// Closing from the client side ends the origin's side too: a second connection is
	// closed by the client, and the proxy's connection count goes back to zero.
	closeFromClient(t, ctx, addr, nil, logs)
	deadline := time.Now().Add(10 * time.Second)
	for {
		svc.mu.Lock()
		open := len(svc.conns)
		svc.mu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client connections still open after both sides closed", open)
		}
		runtimeGosched()
	}
}

// closeFromClient opens a WebSocket to the echo origin through the proxy at addr,
// exchanges a message, and closes it from the client's side: the close handshake must
// go through both ways.
func closeFromClient(t *testing.T, ctx context.Context, addr string, opts *websocket.DialOptions, logs *logBuffer) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.Read(ctx); err != nil || string(m) != "hi" {
		t.Fatalf("echo: %q %v", m, err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close from client: %v\n%s", err, logs.String())
	}
}

// wsMessages is how many messages the WebSocket tests exchange: fewer under the race
// detector, which makes each one several times dearer, so that the tests stay within
// their minute on a loaded two-core machine.
func wsMessages() int {
	if raceDetector {
		return 2000
	}
	return 10000
}

// exchangeWSMessages sends n messages of 0 B to 1 MiB over c to the echo origin, checks
// that each comes back whole and in order, then has the origin close.
func exchangeWSMessages(t *testing.T, ctx context.Context, c *websocket.Conn, n int) {
	t.Helper()
	c.SetReadLimit(2 << 20)
	sizes := []int{0, 1, 125, 126, 65535, 65536, 4096}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	done := make(chan error, 1)
	msgFor := func(i int) []byte {
		size := sizes[i%len(sizes)]
		if i%250 == 249 {
			size = len(big)
		}
		m := big[:size]
		if size >= 8 {
			m = append([]byte(fmt.Sprintf("%08d", i)), big[8:size]...)
		}
		return m
	}
	go func() {
		for i := range n {
			if err := c.Write(ctx, websocket.MessageBinary, msgFor(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, msgFor(i)) {
			t.Fatalf("message %d: got %d bytes, want %d (lost, reordered or corrupted)", i, len(got), len(msgFor(i)))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Closing from the server side reaches the client with its status.
	if err := c.Write(ctx, websocket.MessageText, []byte("close-from-server")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != 4000 {
		t.Fatalf("close from server: %v", err)
	}

}

type rejectWSProxy struct{ fixedProxy }

func (rejectWSProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if s.Request().Header.Get("Origin") == "http://evil.example" {
		return Handled, s.Respond(403, "no\n")
	}
	return Continue, nil
}

func TestWebSocketHandshakeSeenByPhases(t *testing.T) {
	origin := wsEchoOrigin(t)
	svc, _ := newTestService[*testCtx](t, rejectWSProxy{fixedProxy{peer: testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("want 403, got %v %v", resp, err)
	}
	// An Upgrade to anything but websocket is not carried (h2c smuggling).
	got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Fatalf("h2c upgrade carried:\n%s", got)
	}
}

// connectProxy allows CONNECT to one target only.
type connectProxy struct {
	Phases[*testCtx]
	allowed string
	counts  chan [2]int64 // if not nil, gets BytesSent and BytesReceived of each request
}

func (p connectProxy) Logging(_ context.Context, s *Session, _ *testCtx, _ error) {
	if p.counts != nil {
		p.counts <- [2]int64{s.BytesSent(), s.BytesReceived()}
	}
}

func (connectProxy) NewCtx() *testCtx { return &testCtx{} }

func (p connectProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if s.Request().Method == "CONNECT" && s.Request().Target != p.allowed {
		return Handled, s.Respond(403, "target not allowed\n")
	}
	return Continue, nil
}

func (connectProxy) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	return testPeer(s.Request().Target), nil
}

func TestConnectTunnel(t *testing.T) {
	// A line echo server as the target.
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	target := ln.Addr().String()

	off, _ := newTestService[*testCtx](t, connectProxy{allowed: target}, ServiceOptions{})
	if got := rawExchange(t, startProxy(t, off), "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 405 ") {
		t.Fatalf("CONNECT without AllowConnect: %q", got)
	}

	counts := make(chan [2]int64, 8)
	svc, _ := newTestService[*testCtx](t, connectProxy{allowed: target, counts: counts}, ServiceOptions{AllowConnect: true})
	addr := startProxy(t, svc)
	if got := rawExchange(t, addr, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 403 ") {
		t.Fatalf("disallowed target: %q", got)
	}
	<-counts // the refused CONNECT
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	payload := bytes.Repeat([]byte("tunnel!"), 100000)
	go c.Write(payload)
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo through the tunnel: %v", err)
	}
	// Half-close: the target sees EOF, closes, and the client sees EOF.
	c.(*net.TCPConn).CloseWrite()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after half-close: %v", err)
	}
	// The tunnel's bytes are counted both ways.
	select {
	case got := <-counts:
		if want := int64(len(payload)); got != [2]int64{want, want} {
			t.Fatalf("BytesSent, BytesReceived = %v, want %d both", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no Logging after the tunnel ended")
	}
}

// A peer whose 101 switches to another protocol than WebSocket (or names none) does not
// get a tunnel: the client gets 502.
func TestWebSocketWrongSwitch(t *testing.T) {
	for _, upgrade := range []string{"Upgrade: h2c\r\n", ""} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer nc.Close()
					br := bufio.NewReader(nc)
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"+upgrade+"\r\n")
					io.Copy(io.Discard, nc)
				}()
			}
		}()
		svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(ln.Addr().String())}, ServiceOptions{})
		addr := startProxy(t, svc)
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		if resp, body := readResponse(t, br, "GET"); resp.StatusCode != 502 {
			t.Fatalf("%q: got %d %q, want 502", upgrade, resp.StatusCode, body)
		}
		ln.Close()
	}
}

// memEnd is a tunnel end in memory: reads wait for ready, then end; writes are dropped.
type memEnd struct{ ready <-chan struct{} }

func (e memEnd) Read([]byte) (int, error)       { <-e.ready; return 0, io.EOF }
func (memEnd) Write(p []byte) (int, error)      { return len(p), nil }
func (memEnd) Close() error                     { return nil }
func (memEnd) SetReadDeadline(time.Time) error  { return nil }
func (memEnd) SetWriteDeadline(time.Time) error { return nil }

// TestTunnelWaitsForWatchdog checks that a tunnel returns only once its idle watchdog
// has finished: an abort still running after the return could cut the connection or
// reset the HTTP/2 stream that the next request uses. The watchdog fires at once (a
// timeout of a nanosecond) and its abort blocks; the tunnel's ends stay open until the
// abort has begun.
func TestTunnelWaitsForWatchdog(t *testing.T) {
	svc, _ := newTestService[*testCtx](t, fixedProxy{}, ServiceOptions{TunnelIdleTimeout: time.Nanosecond})
	c := &conn[*testCtx]{svc: svc} // tunnelWatched uses only the service
	aborting, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	abort := func() {
		once.Do(func() { close(aborting); <-release })
	}
	end := memEnd{ready: aborting}
	side := tunnelSide{r: end, rd: end, w: end}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.tunnelWatched(&Session{}, side, side, abort)
	}()
	<-aborting
	select {
	case <-done:
		close(release)
		t.Fatal("the tunnel returned while its watchdog was still aborting")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not return after its watchdog finished")
	}
}
