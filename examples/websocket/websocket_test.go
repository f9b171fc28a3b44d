package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "websocket", &binary) }

// A transport is how a test client reaches the proxy: with the HTTP/1.1 Upgrade
// handshake, or with an extended CONNECT over HTTP/2 (RFC 8441), on h2c by prior
// knowledge, which the proxy serves on its plain listener too. Either way
// coder/websocket's Dial reports an accepted handshake as 101.
type transport struct {
	name   string
	client func(t *testing.T) *http.Client // closed when the test ends
}

var transports = []transport{
	{"HTTP/1.1", func(t *testing.T) *http.Client {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}},
	{"HTTP/2", func(t *testing.T) *http.Client { return &http.Client{Transport: rfc8441{h2cTransport(t)}} }},
}

// dialOpts returns dial options that reach the proxy with client, with the given
// Origin fields.
func dialOpts(client *http.Client, origins ...string) *websocket.DialOptions {
	h := http.Header{}
	for _, o := range origins {
		h.Add("Origin", o)
	}
	return &websocket.DialOptions{HTTPClient: client, HTTPHeader: h}
}

// TestOnce runs the whole demo as a user would, with -once, and checks what it printed.
func TestOnce(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "defaults",
			want: []string{
				"Gotthard WebSocket proxy on ws://127.0.0.1:",
				"(101 Switching Protocols)",
				"client: text       22 B  echoed in ",
				"client: text       30 B  echoed in ",
				"client: binary    256 B  echoed in ",
				"client: binary    1 MiB  echoed in ",
				"client: ping             pong in ",
				"client: closed           1000 (normal closure)",
			},
		},
		{
			name: "allow list",
			args: []string{"-allow-origin", "https://app.example, http://127.0.0.1:6192"},
			want: []string{
				"client: binary    1 MiB  echoed in ",
				"client: closed           1000 (normal closure)",
				"client: Origin https://not-allowed.invalid refused by the proxy (403 Forbidden)",
			},
		},
		{
			name: "idle timeout longer than the run",
			args: []string{"-idle-timeout", "10s"},
			want: []string{"client: closed           1000 (normal closure)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, append([]string{"-once", "-listen", "127.0.0.1:0"}, tt.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String(), "Try:") {
				t.Errorf("-once printed what to try:\n%s", stdout.String())
			}
			// The proxy's Logging saw the tunnel.
			if !strings.Contains(stderr.String(), "msg=websocket") || !strings.Contains(stderr.String(), "status=101 tunnel=true") {
				t.Errorf("no log line for the tunnel:\n%s", stderr.String())
			}
		})
	}
}

// TestFlagErrors checks that bad flags stop the program with status 1 and say why.
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"once with upstream", []string{"-once", "-upstream", "127.0.0.1:1"}, "-once runs the demo client"},
		{"origin with a path", []string{"-allow-origin", "https://app.example/page"}, "-allow-origin: origin \"https://app.example/page\""},
		{"origin without scheme", []string{"-allow-origin", "app.example"}, "-allow-origin: origin \"app.example\""},
		{"ws origin", []string{"-allow-origin", "ws://app.example"}, "-allow-origin: origin \"ws://app.example\""},
		{"negative idle timeout", []string{"-idle-timeout", "-1s"}, "-idle-timeout: -1s is negative"},
		{"argument", []string{"extra"}, "unexpected argument \"extra\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(binary, append([]string{"-listen", "127.0.0.1:0"}, tt.args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("got %v, want exit status 1\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestEcho dials the running demo through the proxy, over each transport, and exchanges
// messages of every kind, including sizes where the frame header changes (125/126,
// 65535/65536 bytes).
func TestEcho(t *testing.T) {
	addr := exampletest.Listen(t, binary)
	pattern := func(n int) []byte { return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n] }
	messages := []struct {
		name string
		typ  websocket.MessageType
		data []byte
	}{
		{"empty text", websocket.MessageText, nil},
		{"text", websocket.MessageText, []byte("Grüezi")},
		{"empty binary", websocket.MessageBinary, nil},
		{"binary 125 B", websocket.MessageBinary, pattern(125)},
		{"binary 126 B", websocket.MessageBinary, pattern(126)},
		{"binary 65535 B", websocket.MessageBinary, pattern(65535)},
		{"binary 65536 B", websocket.MessageBinary, pattern(65536)},
		{"text 3 MiB", websocket.MessageText, pattern(3 << 20)},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			client := tr.client(t)
			c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/echo", dialOpts(client))
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c.SetReadLimit(maxMessage)
			for _, tt := range messages {
				t.Run(tt.name, func(t *testing.T) {
					if err := c.Write(ctx, tt.typ, tt.data); err != nil {
						t.Fatal(err)
					}
					typ, got, err := c.Read(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if typ != tt.typ || !bytes.Equal(got, tt.data) {
						t.Fatalf("got a %v message of %d bytes, want a %v message of %d", typ, len(got), tt.typ, len(tt.data))
					}
				})
			}
			pctx := c.CloseRead(ctx)
			if err := c.Ping(pctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}

			// The demo client runs as well against the running proxy.
			var out strings.Builder
			if err := runClient(ctx, &out, "ws://"+addr+"/echo", dialOpts(client)); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
		})
	}

	// The page for browsers comes through the proxy as a plain request.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	pr, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != 200 || !strings.Contains(string(body), `new WebSocket(`) {
		t.Fatalf("page: %d\n%s", pr.StatusCode, body)
	}
}

// TestOrigin puts the proxy in front of the test's own WebSocket origin with an allow
// list and checks which handshakes reach it.
func TestOrigin(t *testing.T) {
	var handshakes, plain atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Sec-WebSocket-Key") == "" {
			plain.Add(1)
			io.WriteString(w, "plain")
			return
		}
		handshakes.Add(1)
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if typ, m, err := c.Read(ctx); err == nil {
			c.Write(ctx, typ, m)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer origin.Close()
	addr := exampletest.Listen(t, binary, "-upstream", strings.TrimPrefix(origin.URL, "http://"),
		"-allow-origin", "https://app.example,http://localhost:8080")

	tests := []struct {
		name    string
		origins []string
		status  int
	}{
		{"no Origin (not a browser)", nil, 101},
		{"allowed", []string{"https://app.example"}, 101},
		{"allowed, another case and the default port", []string{"HTTPS://App.Example:443"}, 101},
		{"allowed with a port", []string{"http://localhost:8080"}, 101},
		{"same host, other port", []string{"http://localhost:8081"}, 403},
		{"same host, other scheme", []string{"http://app.example"}, 403},
		{"other origin", []string{"https://evil.example"}, 403},
		{"allowed as a suffix only", []string{"https://app.example.evil.example"}, 403},
		{"opaque origin", []string{"null"}, 403},
		{"not an origin", []string{"app.example"}, 403},
		{"two Origin fields", []string{"https://app.example", "https://evil.example"}, 403},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client := tr.client(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := handshakes.Load()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/chat", dialOpts(client, tt.origins...))
					if resp == nil {
						t.Fatalf("no response: %v", err)
					}
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tt.status, err)
					}
					reached := handshakes.Load() > before
					if tt.status == 403 {
						if reached {
							t.Fatal("a refused handshake reached the origin")
						}
						body, _ := io.ReadAll(resp.Body)
						if !strings.Contains(string(body), "not allowed") {
							t.Fatalf("403 not from the proxy: %q", body)
						}
						return
					}
					defer c.CloseNow()
					if !reached {
						t.Fatal("an accepted handshake did not reach the origin")
					}
					if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
						t.Fatal(err)
					}
					if _, m, err := c.Read(ctx); err != nil || string(m) != "hi" {
						t.Fatalf("echo: %q, %v", m, err)
					}
					c.Close(websocket.StatusNormalClosure, "")
				})
			}
		})
	}

	// A plain request from a page of another origin is not a handshake: it passes.
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Origin", "https://evil.example")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || plain.Load() != 1 {
		t.Fatalf("plain request: %d, origin reached %d times", resp.StatusCode, plain.Load())
	}
}

// TestUnrequestedSwitch puts the proxy in front of an origin that switches protocols
// for any request. A request that is not a WebSocket handshake must not become a
// tunnel, which would bypass the origin check: the proxy itself answers 502 to such a
// 101, so the example needs no check of its own. A handshake without
// Sec-WebSocket-Key is still a handshake to RequestFilter, and is checked.
func TestUnrequestedSwitch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var switched atomic.Int64
	served := make(chan struct{})
	go func() {
		defer close(served)
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				switched.Add(1)
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				io.Copy(c, br)
			}()
		}
	}()
	defer func() { ln.Close(); <-served }()
	addr := exampletest.Listen(t, binary, "-upstream", ln.Addr().String(), "-allow-origin", "https://app.example")

	h1 := transports[0].client(t)
	h2 := &http.Client{Transport: h2cTransport(t)}
	tests := []struct {
		name    string
		client  *http.Client
		upgrade bool // send Connection: Upgrade and Upgrade: websocket
		status  int
		reached bool // the request reached the origin
	}{
		{"plain GET over HTTP/1.1", h1, false, http.StatusBadGateway, true},
		{"plain GET over HTTP/2", h2, false, http.StatusBadGateway, true},
		{"handshake without Sec-WebSocket-Key", h1, true, http.StatusForbidden, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := switched.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/chat", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", "https://evil.example")
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
			}
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if reached := switched.Load() > before; reached != tt.reached {
				t.Fatalf("reached the origin: %v, want %v", reached, tt.reached)
			}
		})
	}
}

// TestIdleTimeout checks -idle-timeout: a connection with traffic stays open past it,
// and one without is closed once it has passed.
func TestIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	addr := exampletest.Listen(t, binary, "-idle-timeout", idle.String())
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/echo", dialOpts(tr.client(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			for i := range 8 { // 8 × idle/4: twice the timeout, with traffic
				if err := c.Write(ctx, websocket.MessageText, []byte("tick")); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				time.Sleep(idle / 4)
			}
			start := time.Now()
			_, _, err = c.Read(ctx)
			waited := time.Since(start)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("read after the traffic stopped: %v (context: %v)", err, ctx.Err())
			}
			if waited < idle/2 {
				t.Fatalf("closed after %v, before the idle timeout (%v): %v", waited, idle, err)
			}
		})
	}
}
