package h2

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// onlyConn returns the one connection a test server serves.
func (s *testServer) onlyConn(t *testing.T) *Conn {
	t.Helper()
	var c *Conn
	waitFor(t, 5*time.Second, "the server connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for k := range s.conn {
			c = k
		}
		return c != nil
	})
	return c
}

func TestBufferedPreface(t *testing.T) {
	// The listener read part of the preface before handing the connection over.
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 10)
		_, _ = server.Read(buf[:10])
		done <- NewConn(server, buf, Options{}, streamEcho).Serve()
	}()
	c := &rawClient{nc: client, fr: http2.NewFramer(client, client)}
	c.enc = hpack.NewEncoder(&c.hbuf)
	l := c.readAll()
	if _, err := client.Write([]byte(ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := c.open(1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the response", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.statuses) == 1 && l.dataLen == len(defaultBody)
	})
	_ = client.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestBadPreface(t *testing.T) {
	srv := startServer(t, Options{}, streamEcho, nil)
	nc, err := net.Dial("tcp", srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &rawClient{nc: nc, fr: http2.NewFramer(nc, nc)}
	l := c.readAll()
	_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectGoAway(t, l, http2.ErrCodeProtocol)
}

// shutdownWithStreamOpen opens stream 1 on a raw connection, its request body still to
// come (its handler waits for it), and starts a graceful Shutdown of the connection. It
// returns the client, its log of the server's frames and Shutdown's result.
func shutdownWithStreamOpen(t *testing.T) (*rawClient, *frameLog, <-chan error) {
	t.Helper()
	srv := startServer(t, Options{}, streamEcho, nil)
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	if err := c.open(1, false); err != nil {
		t.Fatal(err)
	}
	conn := srv.onlyConn(t)
	waitFor(t, 5*time.Second, "the stream to open", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return len(conn.streams) == 1
	})
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- conn.Shutdown(ctx)
	}()
	return c, l, shut
}

func TestShutdown(t *testing.T) {
	c, l, shut := shutdownWithStreamOpen(t)
	waitFor(t, 5*time.Second, "GOAWAY", func() bool { _, ok := l.goAwayCode(); return ok })
	if code, _ := l.goAwayCode(); code != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v", code)
	}
	// The stream in flight still completes.
	if err := c.fr.WriteData(1, true, []byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.statuses) != 1 || l.dataLen != len("last words") {
		t.Fatalf("in-flight stream: statuses %v, %d bytes", l.statuses, l.dataLen)
	}
}

// TestShutdownTwoSteps: the first GOAWAY names the highest stream id and comes with a
// PING; a stream the client opened before it saw them is served; the PING's
// acknowledgement brings the final GOAWAY with the last stream opened.
func TestShutdownTwoSteps(t *testing.T) {
	c, l, shut := shutdownWithStreamOpen(t)
	var ping [8]byte
	waitFor(t, 5*time.Second, "the first GOAWAY and its PING", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.pings) > 0 {
			ping = l.pings[0]
		}
		return len(l.goAwayIDs) == 1 && len(l.pings) == 1
	})
	l.mu.Lock()
	first := l.goAwayIDs[0]
	l.mu.Unlock()
	if first != maxStreamID {
		t.Fatalf("first GOAWAY names stream %d, want %d", first, uint32(maxStreamID))
	}
	// A request that crossed the first GOAWAY on the wire is still served.
	if err := c.open(3, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the answer to stream 3", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.statuses) == 2 // stream 1 answered its head at once
	})
	if err := c.fr.WritePing(true, ping); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the final GOAWAY", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.goAwayIDs) == 2
	})
	l.mu.Lock()
	final := l.goAwayIDs[1]
	l.mu.Unlock()
	if final != 3 {
		t.Fatalf("final GOAWAY names stream %d, want 3", final)
	}
	if err := c.fr.WriteData(1, true, []byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.statuses) != 2 {
		t.Fatalf("statuses %v, want both streams answered", l.statuses)
	}
}

func TestIdleTimeout(t *testing.T) {
	srv := startServer(t, Options{IdleTimeout: 50 * time.Millisecond}, streamEcho, nil)
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	if err := c.open(1, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection not closed")
	}
	if code, ok := l.goAwayCode(); !ok || code != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v %v, want NO_ERROR", code, ok)
	}
	if len(srv.connErrors()) != 0 {
		t.Fatalf("Serve returned %v", srv.connErrors())
	}
}

func TestExtendedConnect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
	}{{"enabled", true}, {"disabled", false}} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			h := func(st *Stream) {
				got <- st.Request().Protocol
				_ = st.WriteHeaders(200, nil, true)
			}
			srv := startServer(t, Options{EnableConnectProtocol: tc.enabled}, h, nil)
			c := dialRaw(t, srv.addr())
			l := c.readAll()
			c.hbuf.Reset()
			for _, f := range []hpack.HeaderField{
				{Name: ":method", Value: "CONNECT"}, {Name: ":protocol", Value: "websocket"},
				{Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "test"}, {Name: ":path", Value: "/chat"},
			} {
				_ = c.enc.WriteField(f)
			}
			if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			if !tc.enabled {
				waitFor(t, 5*time.Second, "RST_STREAM(PROTOCOL_ERROR)", func() bool { return l.resets(http2.ErrCodeProtocol) == 1 })
				return
			}
			if p := <-got; p != "websocket" {
				t.Fatalf("Protocol %q", p)
			}
		})
	}
}

func TestResponseChecks(t *testing.T) {
	errs := make(chan error, 8)
	h := func(st *Stream) {
		errs <- st.WriteHeaders(200, []Field{{Name: "connection", Value: "close"}}, false)
		errs <- st.WriteHeaders(200, []Field{{Name: "X-Upper", Value: "1"}}, false)
		errs <- st.WriteHeaders(101, nil, false)
		errs <- st.WriteData([]byte("early"), false)
		errs <- st.WriteHeaders(103, []Field{{Name: "link", Value: "</style.css>; rel=preload"}}, false)
		errs <- st.WriteHeaders(200, nil, false)
		errs <- st.WriteTrailers([]Field{{Name: "x-done", Value: "yes"}})
		errs <- st.WriteData(nil, true)
	}
	srv := startServer(t, Options{}, h, nil)
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	if err := c.open(1, true); err != nil {
		t.Fatal(err)
	}
	want := []error{ErrInvalidResponse, ErrInvalidResponse, ErrInvalidResponse, ErrInvalidResponse, nil, nil, nil, ErrStreamDone}
	for i, w := range want {
		if err := <-errs; !errors.Is(err, w) || (w == nil && err != nil) {
			t.Errorf("call %d: %v, want %v", i, err, w)
		}
	}
	waitFor(t, 5*time.Second, "interim and final heads", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return strings.Join(l.statuses, ",") == "103,200"
	})
}

func TestRapidResetServeError(t *testing.T) {
	srv := startServer(t, Options{MaxResets: 10}, echoHandler, nil)
	c := dialRaw(t, srv.addr())
	l := c.readAll()
	attackUntil(t, 1000, func() bool { _, ok := l.goAwayCode(); return ok }, func(i int) error {
		id := uint32(2*i + 1)
		if err := c.open(id, false); err != nil {
			return err
		}
		return c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	})
	expectGoAway(t, l, http2.ErrCodeEnhanceYourCalm)
	waitFor(t, 5*time.Second, "Serve to return", func() bool { return len(srv.connErrors()) == 1 })
	var ce *ConnError
	if err := srv.connErrors()[0]; !errors.As(err, &ce) || ce.Code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("Serve: %v, want a ConnError ENHANCE_YOUR_CALM", err)
	}
}
