package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedOrigin runs a TCP origin whose every connection is handled by serve. The listener
// and every open connection are closed, and the handlers waited for, when the test ends.
func scriptedOrigin(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// answerRequests reads the requests on c (and their bodies) with net/http's parser and
// calls answer for each, until the connection ends or answer fails.
func answerRequests(c net.Conn, answer func(req *http.Request) error) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		if answer(req) != nil {
			return
		}
	}
}

// rawResponder answers every request on a connection with resp.
func rawResponder(resp string) func(net.Conn) {
	return func(c net.Conn) {
		answerRequests(c, func(*http.Request) error {
			_, err := io.WriteString(c, resp)
			return err
		})
	}
}

// dialRaw opens a client connection to addr with a deadline for the whole test step.
func dialRaw(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// waitClosed reads from c until EOF (or a reset), failing the test if the deadline
// passes first. It returns what was read.
func waitClosed(t testing.TB, c net.Conn, br *bufio.Reader, within time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v (read %q)", within, b)
	}
	return string(b)
}

func startEcho(t testing.TB, opts ServiceOptions) (string, *logBuffer) {
	origin, _ := echoOrigin(t)
	svc, logs := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, opts)
	return startProxy(t, svc), logs
}

func TestPipelining(t *testing.T) {
	addr, _ := startEcho(t, ServiceOptions{})
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
	tests := []struct {
		name, method, body, bodyLen string
	}{
		{"GET one", "GET", "hello /one", "0"},
		{"POST two", "POST", "hello /two", "5"},
		{"GET three", "GET", "hello /three", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := readResponse(t, br, tt.method)
			if resp.StatusCode != 200 || body != tt.body {
				t.Fatalf("got %d %q, want %q", resp.StatusCode, body, tt.body)
			}
			if got := resp.Header.Get("X-Method"); got != tt.method {
				t.Fatalf("origin saw method %q", got)
			}
			if got := resp.Header.Get("X-Body-Len"); got != tt.bodyLen {
				t.Fatalf("origin saw body length %s, want %s", got, tt.bodyLen)
			}
		})
	}
}

func TestHTTP10Client(t *testing.T) {
	addr, _ := startEcho(t, ServiceOptions{})
	chunkedOrigin := scriptedOrigin(t, rawResponder("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(chunkedOrigin)}, ServiceOptions{})
	chunkedAddr := startProxy(t, svc)

	t.Run("no keep-alive closes", func(t *testing.T) {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
		got := waitClosed(t, c, br, 5*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "\r\n\r\nhello /a") {
			t.Fatalf("got %q", got)
		}
		if strings.Contains(strings.ToLower(got), "keep-alive") {
			t.Fatalf("keep-alive offered to a 1.0 client that did not ask:\n%s", got)
		}
	})
	t.Run("keep-alive stays open", func(t *testing.T) {
		c, br := dialRaw(t, addr)
		for _, p := range []string{"/a", "/b"} {
			io.WriteString(c, "GET "+p+" HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
			resp, body := readResponse(t, br, "GET")
			if resp.StatusCode != 200 || body != "hello "+p {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Connection"); !strings.EqualFold(got, "keep-alive") {
				t.Fatalf("Connection %q, want keep-alive", got)
			}
		}
	})
	t.Run("chunked origin is close-delimited", func(t *testing.T) {
		c, br := dialRaw(t, chunkedAddr)
		io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
		got := waitClosed(t, c, br, 5*time.Second)
		head, body, _ := strings.Cut(got, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 200 ") || body != "hello world" {
			t.Fatalf("got %q", got)
		}
		if strings.Contains(strings.ToLower(head), "transfer-encoding") || strings.Contains(strings.ToLower(head), "keep-alive") {
			t.Fatalf("chunked or keep-alive sent to a 1.0 client:\n%s", head)
		}
	})
}

// expectProxy rejects requests that carry X-Deny before their body is read.
type expectProxy struct{ fixedProxy }

func (expectProxy) RequestFilter(_ contextT, s *Session, _ *testCtx) (Result, error) {
	if s.Request().Header.Has("X-Deny") {
		return Handled, s.Respond(403, "no\n")
	}
	return Continue, nil
}

func TestExpectContinue(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, expectProxy{fixedProxy{peer: testPeer(origin)}}, ServiceOptions{})
	addr := startProxy(t, svc)

	t.Run("accepted", func(t *testing.T) {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q %v, want 100 Continue", line, err)
		}
		if l, _ := br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("100 Continue not followed by an empty line: %q", l)
		}
		io.WriteString(c, "hello")
		resp, _ := readResponse(t, br, "PUT")
		if resp.StatusCode != 200 || resp.Header.Get("X-Body-Len") != "5" {
			t.Fatalf("got %d, origin body length %s", resp.StatusCode, resp.Header.Get("X-Body-Len"))
		}
	})
	t.Run("rejected before body", func(t *testing.T) {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nX-Deny: 1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, body := readResponse(t, br, "PUT")
		if resp.StatusCode != 403 || body != "no\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		// The body was never asked for, so the connection cannot be reused: it must
		// close rather than read the body as the next request.
		if !resp.Close {
			t.Fatalf("connection kept open with an unread body: %v", resp.Header)
		}
		if rest := waitClosed(t, c, br, 5*time.Second); rest != "" {
			t.Fatalf("more after the 403 (100 Continue?): %q", rest)
		}
	})
}

func TestBodylessResponses(t *testing.T) {
	tests := []struct {
		name   string
		method string
		origin string // raw response
		want   int
		prefix string // extra response expected before the final one
	}{
		{"HEAD with Content-Length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", 200, ""},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n", 304, ""},
		{"103 then 200", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin := scriptedOrigin(t, rawResponder(tt.origin))
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			// Twice on one connection: a proxy that waited for a body would hang or
			// mix the responses up.
			for i := range 2 {
				io.WriteString(c, tt.method+" / HTTP/1.1\r\nHost: x\r\n\r\n")
				if tt.prefix != "" {
					got := make([]byte, len(tt.prefix))
					if _, err := io.ReadFull(br, got); err != nil || string(got) != tt.prefix {
						t.Fatalf("interim response: got %q %v", got, err)
					}
				}
				resp, body := readResponse(t, br, tt.method)
				if resp.StatusCode != tt.want {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tt.want)
				}
				if tt.want == 200 && tt.method == "GET" && body != "ok" {
					t.Fatalf("body %q", body)
				}
				if tt.method == "HEAD" && resp.ContentLength != 1234 {
					t.Fatalf("HEAD Content-Length %d, want 1234", resp.ContentLength)
				}
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	t.Run("response", func(t *testing.T) {
		origin := scriptedOrigin(t, rawResponder("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n"))
		svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
		addr := startProxy(t, svc)
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
		got := waitClosed(t, c, br, 5*time.Second)
		head, body, _ := strings.Cut(got, "\r\n\r\n")
		if !strings.Contains(head, "Transfer-Encoding: chunked") {
			t.Fatalf("not chunked:\n%s", head)
		}
		if !strings.HasSuffix(body, "0\r\nX-Sum: 42\r\n\r\n") || !strings.Contains(body, "abc") {
			t.Fatalf("trailer lost: %q", body)
		}
	})
	t.Run("request", func(t *testing.T) {
		got := make(chan string, 1)
		origin := scriptedOrigin(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err != nil {
				got <- err.Error()
				return
			}
			b, err := io.ReadAll(req.Body)
			got <- fmt.Sprintf("%s|%v|%s|%v", b, req.TransferEncoding, req.Trailer.Get("X-Sum"), err)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		})
		svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
		addr := startProxy(t, svc)
		c, br := dialRaw(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 7\r\n\r\n")
		resp, _ := readResponse(t, br, "POST")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if g := <-got; g != "hello|[chunked]|7|<nil>" {
			t.Fatalf("origin got %q", g)
		}
	})
}

func TestReadUntilCloseResponse(t *testing.T) {
	origin := scriptedOrigin(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
		for i := range 100 {
			fmt.Fprintf(c, "line %d\n", i)
		}
	})
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)
	var want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	for _, version := range []string{"1.1", "1.0"} {
		t.Run("HTTP/"+version, func(t *testing.T) {
			c, br := dialRaw(t, addr)
			io.WriteString(c, "GET / HTTP/"+version+"\r\nHost: x\r\n\r\n")
			resp, body := readResponse(t, br, "GET")
			if resp.StatusCode != 200 || body != want.String() {
				t.Fatalf("got %d, %d bytes", resp.StatusCode, len(body))
			}
			chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
			if chunked != (version == "1.1") {
				t.Fatalf("Transfer-Encoding %v for HTTP/%s", resp.TransferEncoding, version)
			}
		})
	}
}

// patternReader yields n bytes of a fixed pattern without holding them.
type patternReader struct{ n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// heapWatch samples HeapInuse until stopped and returns the peak growth over the
// baseline taken at start.
type heapWatch struct {
	base, peak uint64
	stop, done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				w.peak = max(w.peak, ms.HeapInuse)
			}
		}
	}()
	return w
}

func (w *heapWatch) growth() uint64 {
	close(w.stop)
	<-w.done
	return w.peak - w.base
}

func TestLargeBodiesBoundedMemory(t *testing.T) {
	const size = 16 << 20
	const limit = 4 << 20
	_, origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			// A slow reader: backpressure must reach the client, not the proxy's heap.
			buf := make([]byte, 64<<10)
			n := 0
			for {
				k, err := r.Body.Read(buf)
				n += k
				if err != nil {
					break
				}
				if n%(1<<20) < k {
					time.Sleep(5 * time.Millisecond)
				}
			}
			fmt.Fprint(w, n)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.CopyBuffer(w, &patternReader{n: size}, make([]byte, 32<<10))
	}))
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
	addr := startProxy(t, svc)

	tests := []struct {
		name string
		do   func(t *testing.T, c net.Conn, br *bufio.Reader) int64
	}{
		{"download to a slow client", func(t *testing.T, c net.Conn, br *bufio.Reader) int64 {
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 32<<10)
			var n int64
			for {
				k, err := resp.Body.Read(buf)
				n += int64(k)
				if err != nil {
					break
				}
				if n%(1<<20) < int64(k) {
					time.Sleep(5 * time.Millisecond) // makes the client slow
				}
			}
			return n
		}},
		{"upload to a slow origin", func(t *testing.T, c net.Conn, br *bufio.Reader) int64 {
			fmt.Fprintf(c, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
			if _, err := io.CopyBuffer(c, &patternReader{n: size}, make([]byte, 32<<10)); err != nil {
				t.Fatal(err)
			}
			resp, body := readResponse(t, br, "POST")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var n int64
			fmt.Sscan(body, &n)
			return n
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dialRaw(t, addr)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			w := watchHeap()
			n := tt.do(t, c, br)
			growth := w.growth()
			if n != size {
				t.Fatalf("transferred %d bytes, want %d", n, size)
			}
			if growth > limit {
				t.Fatalf("heap grew by %d KiB during a %d MiB transfer", growth>>10, size>>20)
			}
			t.Logf("heap growth %d KiB", growth>>10)
		})
	}
}

func TestCurlClient(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	addr, _ := startEcho(t, ServiceOptions{})
	dir := t.TempDir()
	file := filepath.Join(dir, "body")
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(body))
	base := "http://" + addr
	tests := []struct {
		name string
		args []string
		want []string // substrings of curl's combined output
	}{
		{"GET", []string{"-i", base + "/get"}, []string{"HTTP/1.1 200", "hello /get"}},
		{"POST file", []string{"-i", "--data-binary", "@" + file, base + "/post"},
			[]string{"HTTP/1.1 200", "X-Body-Sha: " + sum, "X-Body-Len: 1048576"}},
		{"POST chunked file", []string{"-i", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file, base + "/post"},
			[]string{"HTTP/1.1 200", "X-Body-Sha: " + sum, "X-Body-Len: 1048576"}},
		{"HEAD", []string{"-I", base + "/head"}, []string{"HTTP/1.1 200", "X-Method: HEAD"}},
		{"keep-alive reuse", []string{"-v", base + "/one", base + "/two"},
			[]string{"hello /one", "hello /two", "Re-using existing connection"}},
		{"HTTP/1.0", []string{"-i", "--http1.0", base + "/old"}, []string{"HTTP/1.1 200", "hello /old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-sS", "--max-time", "20"}, tt.args...)
			out, err := exec.Command(curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Fatalf("curl output lacks %q:\n%.2000s", w, out)
				}
			}
		})
	}
}

func TestStreamedResponseNotHeldBack(t *testing.T) {
	tests := []struct {
		name, head, first string
	}{
		{"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "event 1\n"},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n", "8\r\nevent 1\n\r\n"},
		{"until close", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", "event 1\n"},
		{"head only", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin := scriptedOrigin(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tt.head+tt.first)
				io.Copy(io.Discard, c) // stalls until the test ends
			})
			svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{})
			addr := startProxy(t, svc)
			c, br := dialRaw(t, addr)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response head held back while the origin stalls: %v", err)
			}
			if tt.first == "" {
				return
			}
			got := make([]byte, len("event 1\n"))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != "event 1\n" {
				t.Fatalf("first event held back: %q %v", got, err)
			}
		})
	}
}

// The last request a connection may serve (MaxRequestsPerConn) gets "Connection: close"
// in its response, so the client knows to open a new connection, and the connection
// closes after it.
func TestMaxRequestsPerConnSaysClose(t *testing.T) {
	origin, _ := echoOrigin(t)
	svc, _ := newTestService[*testCtx](t, fixedProxy{peer: testPeer(origin)}, ServiceOptions{MaxRequestsPerConn: 3})
	addr := startProxy(t, svc)
	c, br := dialRaw(t, addr)
	for i := range 3 {
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || body != "hello /a" || resp.Close != (i == 2) {
			t.Fatalf("request %d: %d %q, Connection: close %v", i+1, resp.StatusCode, body, resp.Close)
		}
	}
	if out := waitClosed(t, c, br, 3*time.Second); out != "" {
		t.Fatalf("bytes after the last response: %q", out)
	}
}
