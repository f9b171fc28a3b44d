package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gotthard-proxy/gotthard/internal/h2"
	gtls "github.com/gotthard-proxy/gotthard/tls"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// wsFloodOrigin is a WebSocket origin that sends binary messages without pause (see
// floodMessage) until its connection ends, and reports the close status it got from
// its client (-1 for none).
func wsFloodOrigin(t *testing.T) (string, chan websocket.StatusCode) {
	got := make(chan websocket.StatusCode, 4)
	_, addr := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			for seq := uint64(0); ; seq++ {
				if c.Write(ctx, websocket.MessageBinary, floodMessage(seq)) != nil {
					return
				}
			}
		}()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				got <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	return addr, got
}

// floodMessage is the message number seq of wsFloodOrigin: its number, then bytes
// that depend on it and their place, 8 B to 200 KiB long, so that frames span several
// reads of the proxy's buffers and a cut one shows.
func floodMessage(seq uint64) []byte {
	n := 8 + int(seq*7919%(200<<10))
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

// checkFlood reads wsFloodOrigin's messages from c, each whole and in order, until
// the connection ends; it sends the number read to started once it reaches 5, and
// returns the error that ended the reading.
func checkFlood(ctx context.Context, c *websocket.Conn, started chan<- struct{}) error {
	c.SetReadLimit(1 << 20)
	for seq := uint64(0); ; seq++ {
		typ, m, err := c.Read(ctx)
		if err != nil {
			return err
		}
		want := floodMessage(seq)
		if typ != websocket.MessageBinary || string(m) != string(want) {
			return fmt.Errorf("message %d: %d bytes, not the %d sent", seq, len(m), len(want))
		}
		if seq == 5 {
			close(started)
		}
	}
}

// drainProxy logs each request's error.
func drainProxy(peer *Peer) loggingProxy {
	return loggingProxy{peer: peer, logged: make(chan loggedRequest, 64)}
}

// shutdownWith starts svc.Shutdown with a context that ends after limit, and returns
// where its result comes once the shutdown has begun, so that a CloseStreams after it
// also ends the streams that open later (as a server calls it: while Shutdown runs). A
// tunnel whose 101 the client has read may not be registered yet.
func shutdownWith(svc *Service[*testCtx], limit time.Duration) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		shut <- svc.Shutdown(ctx)
	}()
	for !svc.closing.Load() {
		runtimeGosched()
	}
	return shut
}

// dialWS opens a WebSocket to addr/ws through the proxy over HTTP/1.1 (proto "h1") or
// HTTP/2 (RFC 8441, proto "h2").
func dialWS(t *testing.T, ctx context.Context, addr, proto string, logs *logBuffer) *websocket.Conn {
	t.Helper()
	var opts *websocket.DialOptions
	if proto == "h2" {
		opts = &websocket.DialOptions{HTTPClient: newRFC8441Client()}
	}
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", opts)
	if err != nil {
		t.Fatalf("dial over %s: %v\n%s", proto, err, logs.String())
	}
	return c
}

// TestCloseStreamsWebSocket checks CloseStreams on a WebSocket whose origin sends
// without pause, from a client over HTTP/1.1 and over HTTP/2 (RFC 8441): while Shutdown
// runs, the client gets close status 1001 after whole messages only, the origin gets a
// (masked) 1001 too, the request ends with ErrShutdown, and Shutdown returns before its
// context ends.
func TestCloseStreamsWebSocket(t *testing.T) {
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			origin, originGot := wsFloodOrigin(t)
			app := drainProxy(testPeer(origin))
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := dialWS(t, ctx, addr, proto, logs)
			defer c.CloseNow()
			started := make(chan struct{})
			read := make(chan error, 1)
			go func() { read <- checkFlood(ctx, c, started) }()
			select {
			case <-started:
			case err := <-read:
				t.Fatalf("before the drain: %v", err)
			}

			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			if err := <-read; websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("client: %v, want close status 1001\n%s", err, logs.String())
			}
			if got := <-originGot; got != websocket.StatusGoingAway {
				t.Fatalf("origin got close status %d, want 1001", got)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v\n%s", err, logs.String())
			}
			if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", l.err)
			}
		})
	}
}

// errProxy is connectProxy that reports each request's error.
type errProxy struct {
	connectProxy
	errs chan error
}

func (p errProxy) Logging(_ context.Context, _ *Session, _ *testCtx, err error) { p.errs <- err }

// TestCloseStreamsConnect checks that CloseStreams closes a CONNECT tunnel both ways,
// from a client over HTTP/1.1 and over HTTP/2, while Shutdown runs: the client's and
// the target's connections end, the request ends with ErrShutdown, and Shutdown returns
// before its context ends.
func TestCloseStreamsConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ended := make(chan struct{}, 4)
	go func() { // echoes until its client ends
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				io.Copy(nc, nc)
				ended <- struct{}{}
			}()
		}
	}()
	target := ln.Addr().String()
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			app := errProxy{connectProxy{allowed: target}, make(chan error, 4)}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{AllowConnect: true})
			addr := startProxy(t, svc)
			var rw io.ReadWriter
			if proto == "h1" {
				c, br := dialRaw(t, addr)
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
				if resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
					t.Fatalf("CONNECT: %v %v", resp, err)
				}
				rw = struct {
					io.Reader
					io.Writer
				}{br, c}
			} else {
				rw = openTunnel(t, addr, h2.TunnelRequest{Authority: target})
			}
			io.WriteString(rw, "ping")
			var b [4]byte
			if _, err := io.ReadFull(rw, b[:]); err != nil || string(b[:]) != "ping" {
				t.Fatalf("echo %q %v", b, err)
			}

			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			if n, err := io.Copy(io.Discard, rw); n != 0 {
				t.Fatalf("read %d bytes after the drain (%v)", n, err)
			}
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the target's connection is still open")
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v\n%s", err, logs.String())
			}
			if err := <-app.errs; !errors.Is(err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", err)
			}
			if !strings.Contains(logs.String(), `level=DEBUG msg="CONNECT tunnel closed`) {
				t.Fatalf("no debug line for the closed tunnel:\n%s", logs.String())
			}
		})
	}
}

// TestCloseStreamsLeavesPlainRequests checks that a plain HTTP request in flight
// during CloseStreams, over HTTP/1.1 and HTTP/2, still gets its whole response.
func TestCloseStreamsLeavesPlainRequests(t *testing.T) {
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			asked, release := make(chan struct{}), make(chan struct{})
			_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(asked)
				<-release
				io.WriteString(w, "done")
			}))
			app := drainProxy(testPeer(origin))
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			client := testClient(t)
			if proto == "h2" {
				client = h2cClient(t)
			}
			type result struct {
				status int
				body   string
				err    error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := client.Get("http://" + addr + "/slow")
				if err != nil {
					got <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{resp.StatusCode, string(b), err}
			}()
			<-asked
			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			svc.CloseStreams() // twice: no harm
			close(release)
			if r := <-got; r.err != nil || r.status != 200 || r.body != "done" {
				t.Fatalf("got %d %q %v\n%s", r.status, r.body, r.err, logs.String())
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if l := <-app.logged; l.err != nil {
				t.Fatalf("Logging got %v", l.err)
			}
		})
	}
}

// CloseStreams is safe before Shutdown, twice, and after Close.
func TestCloseStreamsAnyTime(t *testing.T) {
	origin := wsEchoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	svc.CloseStreams()
	svc.CloseStreams()
	// Before a shutdown, it ends the streams open then, not those that open later.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	exchangeWSMessages(t, ctx, c, 10)
	svc.Close()
	svc.CloseStreams()
}

// TestCloseStreamsGRPC checks that CloseStreams ends a gRPC server stream through the
// proxy with UNAVAILABLE while Shutdown runs: one whose response has started and that
// waits for its next message, one whose response has not started, and one that sends
// large messages without pause (which must end between two of them). Shutdown returns
// before its context ends, and the call ends with ErrShutdown.
func TestCloseStreamsGRPC(t *testing.T) {
	origin := streamingOrigin(t)
	for _, tc := range []struct {
		name   string
		params []*testgrpc.ResponseParameters
		before int // messages to receive before the drain
	}{
		{"waiting", []*testgrpc.ResponseParameters{{Size: 10}, {Size: 10, IntervalUs: 60e6}}, 1},
		{"not started", []*testgrpc.ResponseParameters{{Size: 10, IntervalUs: 60e6}}, 0},
		// (grpc-go's interop server sends without pause when no interval is set.)
		{"busy", slices.Repeat([]*testgrpc.ResponseParameters{{Size: 100 << 10}}, 2000), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := askedProxy{drainProxy(&Peer{Address: origin, Protocol: ProtoHTTP2}), make(chan struct{}, 1)}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			conn := grpcClient(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stream, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(ctx,
				&testgrpc.StreamingOutputCallRequest{ResponseParameters: tc.params}, grpc.MaxCallRecvMsgSize(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for ; got < tc.before; got++ {
				if _, err := stream.Recv(); err != nil {
					t.Fatalf("message %d: %v", got, err)
				}
			}
			if tc.before == 0 {
				<-app.asked // the call is on its way to the origin
			}
			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			for {
				_, err = stream.Recv()
				if err != nil {
					break
				}
				got++
			}
			if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "server shutting down" {
				t.Fatalf("after %d messages: %v, want UNAVAILABLE\n%s", got, err, logs.String())
			}
			if got >= len(tc.params) {
				t.Fatalf("all %d messages came", got)
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", l.err)
			}
		})
	}
}

// streamingServer is the gRPC TestService's StreamingOutputCall, with waits that end
// with the call (those of grpc-go's interop server do not).
type streamingServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (streamingServer) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	for _, p := range req.ResponseParameters {
		if p.IntervalUs > 0 {
			select {
			case <-time.After(time.Duration(p.IntervalUs) * time.Microsecond):
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		resp := &testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.Size)}}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// streamingOrigin runs streamingServer on a loopback port until the test ends, and
// returns its address.
func streamingOrigin(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, streamingServer{})
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// askedProxy is loggingProxy that tells when UpstreamPeer runs.
type askedProxy struct {
	loggingProxy
	asked chan struct{}
}

func (p askedProxy) UpstreamPeer(ctx context.Context, s *Session, c *testCtx) (*Peer, error) {
	select {
	case p.asked <- struct{}{}:
	default:
	}
	return p.loggingProxy.UpstreamPeer(ctx, s, c)
}

// TestCloseStreamsGRPCOverHTTP1 checks CloseStreams on a gRPC call from an HTTP/1.1
// client to an HTTP/1.1 origin: a response under way ends after its whole messages with
// grpc-status 14 in the chunked body's trailers; one not started is answered
// trailers-only.
func TestCloseStreamsGRPCOverHTTP1(t *testing.T) {
	msg := append([]byte{0, 0, 0, 0, 3}, "abc"...)
	for _, started := range []bool{true, false} {
		t.Run(fmt.Sprint("started=", started), func(t *testing.T) {
			_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body) // (then net/http notices the proxy's close)
				w.Header().Set("Content-Type", "application/grpc")
				if started {
					w.Write(msg)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done() // more some day; until the proxy goes
			}))
			app := askedProxy{drainProxy(testPeer(origin)), make(chan struct{}, 1)}
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, "POST /grpc.testing.TestService/StreamingOutputCall HTTP/1.1\r\nHost: a\r\n"+
				"Content-Type: application/grpc\r\nTE: trailers\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00")
			var resp *http.Response
			if started {
				var err error
				if resp, err = http.ReadResponse(br, &http.Request{Method: "POST"}); err != nil {
					t.Fatal(err)
				}
				b := make([]byte, len(msg))
				if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != string(msg) {
					t.Fatalf("first message %q %v", b, err)
				}
			} else {
				<-app.asked
			}
			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			status := ""
			if started {
				rest, err := io.ReadAll(resp.Body)
				if err != nil || len(rest) != 0 {
					t.Fatalf("after the first message: %q %v\n%s", rest, err, logs.String())
				}
				status = resp.Trailer.Get("Grpc-Status")
			} else {
				resp, body := readResponse(t, br, "POST")
				if resp.StatusCode != 200 || body != "" {
					t.Fatalf("got %d %q", resp.StatusCode, body)
				}
				status = resp.Header.Get("Grpc-Status")
			}
			if status != "14" {
				t.Fatalf("grpc-status %q, want 14\n%s", status, logs.String())
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", l.err)
			}
		})
	}
}

// Endpoints tells a TLS endpoint from a plain one.
func TestEndpointTLS(t *testing.T) {
	now := time.Now()
	cfg, err := gtls.New(gtls.Options{Certificates: []gtls.CertFile{writeCert(t, t.TempDir(), now.Add(-time.Hour), now.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := newTestService[*testCtx](t, fixedProxy{}, ServiceOptions{})
	svc.AddTCP("127.0.0.1:0")
	svc.AddTLS("127.0.0.1:0", cfg)
	svc.AddUnix(filepath.Join(t.TempDir(), "s.sock"))
	var got []bool
	for _, ep := range svc.Endpoints() {
		tep, ok := ep.(interface{ TLS() bool })
		if !ok {
			t.Fatalf("endpoint %v has no TLS method", ep)
		}
		got = append(got, tep.TLS())
	}
	if want := []bool{false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("TLS() = %v, want %v", got, want)
	}
}

// TestCloseStreamsWebSocketToHTTP2Peer checks CloseStreams on WebSockets that go to
// their origin over HTTP/2 (RFC 8441), from an HTTP/1.1 and from an HTTP/2 client: the
// client gets close status 1001, the origin answers the proxy's close (its framing
// reads the proxy's frame as a client's, masked), and Shutdown returns before its
// context ends.
func TestCloseStreamsWebSocketToHTTP2Peer(t *testing.T) {
	origin, _ := wsH2Origin(t)
	for _, proto := range []string{"h1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			app := drainProxy(&Peer{Address: origin, Protocol: ProtoHTTP2})
			svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := dialWS(t, ctx, addr, proto, logs)
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if _, m, err := c.Read(ctx); err != nil || string(m) != "hi" {
				t.Fatalf("echo: %q %v", m, err)
			}
			shut := shutdownWith(svc, 20*time.Second)
			svc.CloseStreams()
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("client: %v, want close status 1001\n%s", err, logs.String())
			}
			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v\n%s", err, logs.String())
			}
			if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
				t.Fatalf("Logging got %v, want ErrShutdown", l.err)
			}
		})
	}
}

// A WebSocket client that never answers the proxy's close frame does not hold the
// drain: the client reads the close frame (status 1001, unmasked) and then the end of
// the connection, and Shutdown returns before its context ends.
func TestCloseStreamsWebSocketSilentClient(t *testing.T) {
	origin := wsEchoOrigin(t)
	app := drainProxy(testPeer(origin))
	svc, logs := newTestService[*testCtx](t, app, ServiceOptions{})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	shut := shutdownWith(svc, 20*time.Second)
	svc.CloseStreams()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("after the close frame: %v", err)
	}
	checkClose(t, rest, false)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v\n%s", err, logs.String())
	}
	if l := <-app.logged; !errors.Is(l.err, ErrShutdown) {
		t.Fatalf("Logging got %v, want ErrShutdown", l.err)
	}
}
