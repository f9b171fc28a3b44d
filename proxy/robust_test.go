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
	"sync/atomic"
	"testing"
	"time"
)

// routeProxy sends /ok... to good and everything else to bad, so that one service can
// show a failing request next to a healthy one.
type routeProxy struct {
	Phases[*testCtx]
	good, bad *Peer
	buffer    bool // buffer request bodies (makes them retryable)
}

func (routeProxy) NewCtx() *testCtx { return &testCtx{} }

func (p routeProxy) RequestFilter(_ context.Context, s *Session, _ *testCtx) (Result, error) {
	if p.buffer {
		if _, err := s.BufferRequestBody(1 << 20); err != nil {
			return Continue, err
		}
	}
	return Continue, nil
}

func (p routeProxy) UpstreamPeer(_ context.Context, s *Session, _ *testCtx) (*Peer, error) {
	if strings.HasPrefix(s.Request().Target, "/ok") {
		return p.good, nil
	}
	return p.bad, nil
}

// logLines returns the non-empty lines of the log.
func logLines(l *logBuffer) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// waitLog waits until the log has n lines, and fails if it has more.
func waitLog(t testing.TB, l *logBuffer, n int, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(logLines(l)) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	lines := logLines(l)
	if len(lines) != n {
		t.Fatalf("got %d log lines, want %d:\n%s", len(lines), n, l.String())
	}
	if n > 0 && !strings.Contains(lines[0], want) {
		t.Fatalf("log line lacks %q: %s", want, lines[0])
	}
}

// healthy checks that the proxy still serves a normal client on its own connection.
func healthy(t testing.TB, addr string) {
	t.Helper()
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 || body != "hello /ok" {
		t.Fatalf("healthy client: %d %q", resp.StatusCode, body)
	}
}

func statusOf(s string) int {
	var v, code int
	fmt.Sscanf(s, "HTTP/1.%d %d", &v, &code)
	return code
}

func TestRobustness(t *testing.T) {
	good, _ := echoOrigin(t)
	tests := []struct {
		name     string
		opts     ServiceOptions
		peerOpts PeerOptions
		origin   func(net.Conn) // nil: the good origin
		do       func(t *testing.T, addr string) string
		status   int // 0: no response expected
		logs     int
		log      string
	}{
		{
			name: "slowloris head",
			opts: ServiceOptions{KeepaliveTimeout: 300 * time.Millisecond},
			do: func(t *testing.T, addr string) string {
				c, br := dialRaw(t, addr)
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					head := "GET /ok HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
					for i := range len(head) {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond): // a slow client
						}
						if _, err := c.Write([]byte{head[i]}); err != nil {
							return
						}
					}
				}()
				healthy(t, addr)
				return waitClosed(t, c, br, 3*time.Second)
			},
			status: 408, logs: 1, log: "request head timeout",
		},
		{
			name: "idle keep-alive",
			opts: ServiceOptions{KeepaliveTimeout: 300 * time.Millisecond},
			do: func(t *testing.T, addr string) string {
				c, br := dialRaw(t, addr)
				io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
				readResponse(t, br, "GET")
				start := time.Now()
				healthy(t, addr)
				out := waitClosed(t, c, br, 3*time.Second)
				if d := time.Since(start); d < 200*time.Millisecond {
					t.Fatalf("closed after %v, before the keep-alive timeout", d)
				}
				return out
			},
		},
		{
			name:     "slow upstream",
			peerOpts: PeerOptions{ReadTimeout: 200 * time.Millisecond},
			origin: func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.Copy(io.Discard, c) // until the test closes it
			},
			do: func(t *testing.T, addr string) string {
				healthy(t, addr)
				return rawExchange(t, addr, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			},
			status: 504, logs: 1, log: "timeout",
		},
		{
			name:     "upstream never answers",
			peerOpts: PeerOptions{ReadTimeout: 200 * time.Millisecond},
			origin:   func(c net.Conn) { io.Copy(io.Discard, c) },
			do: func(t *testing.T, addr string) string {
				healthy(t, addr)
				return rawExchange(t, addr, "GET /never HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			},
			status: 504, logs: 1, log: "timeout",
		},
		{
			name: "upstream killed mid-response",
			origin: func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
			},
			do: func(t *testing.T, addr string) string {
				got := rawExchange(t, addr, "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
				if !strings.HasSuffix(got, "\r\n\r\nonly part") {
					t.Fatalf("got %q", got)
				}
				healthy(t, addr)
				return got
			},
			status: 200, logs: 1, log: "request failed",
		},
		{
			name: "client gone mid-response",
			origin: func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
				buf := make([]byte, 32<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			},
			do: func(t *testing.T, addr string) string {
				c, br := dialRaw(t, addr)
				io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
				line, _ := br.ReadString('\n')
				io.ReadFull(br, make([]byte, 64<<10))
				c.Close()
				healthy(t, addr)
				return line
			},
			status: 200, logs: 1, log: "request failed",
		},
		{
			name: "malformed request",
			do: func(t *testing.T, addr string) string {
				got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
				if !strings.Contains(got, "Connection: close\r\n") {
					t.Fatalf("no Connection: close:\n%s", got)
				}
				healthy(t, addr)
				return got
			},
			status: 400, logs: 1, log: `msg="bad request" service=test client=127.0.0.1 status=400 reason="whitespace before colon" head="\"GET / HTTP/1.1\\r\\nHost: x\\r\\nBad Header\\r\\n\\r\\n\""`,
		},
		{
			name: "oversized head",
			do: func(t *testing.T, addr string) string {
				big := strings.Repeat("X-Big: "+strings.Repeat("a", 4000)+"\r\n", 10)
				got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n"+big+"\r\n")
				healthy(t, addr)
				return got
			},
			status: 431, logs: 1, log: `reason="head too large" head="\"GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Big: ` + strings.Repeat("a", 256-len("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")) + `\"..."`,
		},
		{
			name: "unknown transfer coding",
			do: func(t *testing.T, addr string) string {
				got := rawExchange(t, addr, "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\nabc")
				healthy(t, addr)
				return got
			},
			status: 501, logs: 1, log: "bad request",
		},
		{
			name:   "upstream sends CL and TE",
			origin: rawResponder("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
			do: func(t *testing.T, addr string) string {
				got := rawExchange(t, addr, "GET /bad HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				healthy(t, addr)
				return got
			},
			status: 502, logs: 1, log: "request failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := testPeer(good)
			if tt.origin != nil {
				bad = testPeer(scriptedOrigin(t, tt.origin))
			}
			bad.Options = tt.peerOpts
			svc, logs := newTestService[*testCtx](t, routeProxy{good: testPeer(good), bad: bad}, tt.opts)
			addr := startProxy(t, svc)
			got := tt.do(t, addr)
			if code := statusOf(got); code != tt.status {
				t.Fatalf("status %d, want %d; got %.300q", code, tt.status, got)
			}
			waitLog(t, logs, tt.logs, tt.log)
			healthy(t, addr)
		})
	}
}

// countingOrigin reads one request per connection, counts it, and runs then.
func countingOrigin(t testing.TB, n *atomic.Int64, then func(c net.Conn, body string)) string {
	return scriptedOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			n.Add(1)
			then(c, string(b))
		}
	})
}

func TestRetryAfterUpstreamDies(t *testing.T) {
	tests := []struct {
		name      string
		buffer    bool
		method    string
		status    int
		deadCount int64 // requests the dying origin sees
	}{
		{"buffered PUT is retried", true, "PUT", 200, 1},
		{"streamed PUT is not retried", false, "PUT", 502, 1},
		{"buffered POST is not retried", true, "POST", 502, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var deadN, liveN atomic.Int64
			dying := countingOrigin(t, &deadN, func(c net.Conn, _ string) { c.Close() })
			live := countingOrigin(t, &liveN, func(c net.Conn, body string) {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			})
			app := retryOnErrorProxy{routeProxy: routeProxy{buffer: tt.buffer}, peers: []*Peer{testPeer(dying), testPeer(live)}}
			svc, _ := newTestService[*testCtx](t, app, ServiceOptions{})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			io.WriteString(c, tt.method+" /x HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npayload")
			resp, body := readResponse(t, br, tt.method)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 && body != "payload" {
				t.Fatalf("retried body %q", body)
			}
			if deadN.Load() != tt.deadCount {
				t.Fatalf("dying origin saw %d requests", deadN.Load())
			}
			wantLive := int64(0)
			if tt.status == 200 {
				wantLive = 1
			}
			if liveN.Load() != wantLive {
				t.Fatalf("second origin saw %d requests, want %d", liveN.Load(), wantLive)
			}
		})
	}
}

// retryOnErrorProxy tries its peers in turn and asks for a retry on every error.
type retryOnErrorProxy struct {
	routeProxy
	peers []*Peer
}

func (p retryOnErrorProxy) UpstreamPeer(_ context.Context, _ *Session, c *testCtx) (*Peer, error) {
	peer := p.peers[c.n%len(p.peers)]
	c.n++
	return peer, nil
}

func (retryOnErrorProxy) ErrorWhileProxy(_ context.Context, _ *Session, _ *testCtx, _ *Peer, err *Error, _ bool) *Error {
	err.Retry = true
	return err
}

func TestPoolReuse(t *testing.T) {
	tests := []struct {
		name       string
		poolSize   int
		closeIdle  bool // the origin closes each connection after answering
		wantNew    uint64
		wantReused uint64
	}{
		{"reused", 0, false, 1, 4},
		{"origin closes idle connections", 0, true, 5, 0},
		{"pool disabled", -1, false, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			closed := make(chan struct{}, 10)
			origin := countingOrigin(t, &n, func(c net.Conn, _ string) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if tt.closeIdle {
					// Close without saying so (no Connection: close): the proxy finds
					// out only by its liveness check.
					c.(*net.TCPConn).CloseWrite()
					closed <- struct{}{}
				}
			})
			svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)},
				ServiceOptions{UpstreamKeepalivePoolSize: tt.poolSize})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			for i := range 5 {
				// A POST cannot be resent, so the pool checks a connection directly
				// before it uses it for one.
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
				resp, body := readResponse(t, br, "POST")
				if resp.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q\n%s", i, resp.StatusCode, body, logs.String())
				}
				if tt.closeIdle {
					<-closed
				}
			}
			if st := svc.PoolStats(); st.New != tt.wantNew || st.Reused != tt.wantReused {
				t.Fatalf("pool stats %+v, want New %d Reused %d", st, tt.wantNew, tt.wantReused)
			}
			if lines := logLines(logs); len(lines) != 0 {
				t.Fatalf("unexpected logs:\n%s", logs.String())
			}
		})
	}
}

func TestCloseCutsInFlight(t *testing.T) {
	started := make(chan struct{})
	stalled := make(chan struct{})
	defer close(stalled)
	origin := scriptedOrigin(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
		close(started)
		<-stalled
	})
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve([]net.Listener{ln}) }()
	c, br := dialRaw(t, ln.Addr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	// What the origin sent so far reaches the client while the origin stalls.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part" {
		t.Fatalf("streamed part: %q %v", part, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- svc.Close() }()
	if rest := waitClosed(t, c, br, 5*time.Second); rest != "" {
		t.Fatalf("more after Close: %q", rest)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a request was in flight")
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestClientGoneMidBodyKeepsPeer checks that when a client goes away in the middle of a
// response body, the rest of a short body is read and dropped so that the peer's
// connection goes back to the pool (drainResponse): the next request reuses it. The
// origin holds the end of the body back until the client has reset its connection, so
// that the proxy's write after it fails for certain.
func TestClientGoneMidBodyKeepsPeer(t *testing.T) {
	const first, rest = 64 << 10, 100 << 10
	release := make(chan struct{}, 2)
	var accepted atomic.Int32
	origin := scriptedOrigin(t, func(c net.Conn) {
		accepted.Add(1)
		answerRequests(c, func(req *http.Request) error {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", first+rest)
			c.Write(bytes.Repeat([]byte("a"), first))
			if req.URL.Path == "/held" {
				<-release
			}
			_, err := c.Write(bytes.Repeat([]byte("b"), rest))
			return err
		})
	})
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // a reset: the proxy's next write fails
	c.Close()
	time.Sleep(50 * time.Millisecond)
	release <- struct{}{}

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "downstream write error") || svc.PoolStats().Idle != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pool %+v; log:\n%s", svc.PoolStats(), logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := testClient(t).Get("http://" + addr + "/again")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != first+rest {
		t.Fatalf("second request: %d, %d bytes", resp.StatusCode, len(body))
	}
	if st := svc.PoolStats(); st.New != 1 || st.Reused != 1 || accepted.Load() != 1 {
		t.Errorf("pool %+v, origin accepted %d: want the one connection reused", st, accepted.Load())
	}
}
