package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

// binary is the gateway command built once for the tests.
var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "gateway", &binary) }

// syncBuffer is a buffer safe for a process to write and a test to read.
type syncBuffer = exampletest.Buffer

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a raw TCP origin that records every byte it receives and answers each
// request it can parse with a fixed response, after release (if set) is closed.
type recorder struct {
	ln      net.Listener
	mu      sync.Mutex
	data    bytes.Buffer
	bodies  []string
	got     chan struct{} // receives one value per request read
	release chan struct{}
	wg      sync.WaitGroup
	conns   map[net.Conn]struct{}
}

func startRecorder(t *testing.T, release chan struct{}) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, got: make(chan struct{}, 100), release: release, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data.Write(p)
}

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			br := bufio.NewReader(io.TeeReader(c, r))
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body, err := io.ReadAll(req.Body)
				if err != nil {
					return
				}
				r.mu.Lock()
				r.bodies = append(r.bodies, string(body))
				r.mu.Unlock()
				r.got <- struct{}{}
				if r.release != nil {
					<-r.release
				}
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\norigin"); err != nil {
					return
				}
			}
		}()
	}
}

// since returns the bytes received after offset mark.
func (r *recorder) since(mark int) (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data.String()[mark:], r.data.Len()
}

func (r *recorder) lastBody() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		return ""
	}
	return r.bodies[len(r.bodies)-1]
}

// gatewayProc is a running gateway process.
type gatewayProc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error // valid after exited is closed
}

// startGateway runs the gateway binary with args; it is killed when the test ends.
// waitAccepting waits until the gateway accepts connections on addr, failing t if it
// exits first.
func (p *gatewayProc) waitAccepting(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "the gateway to accept on "+addr, 10*time.Second, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("gateway exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func startGateway(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	return startGatewayEnv(t, nil, args...)
}

// startGatewayEnv is startGateway with env added to the gateway's environment.
func startGatewayEnv(t *testing.T, env []string, args ...string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// startProxying runs the gateway in front of upstream, with more flags if given, and
// waits until it accepts.
func startProxying(t *testing.T, upstream string, flags ...string) *gatewayProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := startGateway(t, append([]string{"-listen", addr, "-upstream", upstream}, flags...)...)
	p.addr = addr
	p.waitAccepting(t, addr)
	return p
}

// exchange sends raw on a new connection and returns everything read until the gateway
// closes it (or, for a kept-alive connection, until the first response is read).
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	var head bytes.Buffer
	resp.Header.Write(&head)
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, head.String(), body)
}

func TestSmugglingProbes(t *testing.T) {
	rec := startRecorder(t, nil)
	gw := startProxying(t, rec.ln.Addr().String())
	smuggled := "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name     string
		req      string
		status   []int
		headMay  bool // the head may reach the origin (the body is streamed), but no smuggled request
		smuggled bool // the probe carries a smuggled request the origin must never see
	}{
		{name: "CL.TE", req: "POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, status: []int{400}, smuggled: true},
		{name: "TE.CL", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n", status: []int{400}, smuggled: true},
		{name: "TE.TE second field", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", status: []int{400, 501}},
		{name: "TE xchunked", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: []int{501}},
		{name: "TE space before colon", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: []int{400}},
		{name: "TE chunked, identity", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: []int{400, 501}},
		{name: "TE obs-fold", req: "POST /probe HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{400}},
		{name: "differing Content-Length", req: "POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: []int{400}},
		{name: "Content-Length list", req: "POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", status: []int{400}},
		{name: "obs-fold", req: "GET /probe HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", status: []int{400}},
		{name: "bare CR in value", req: "GET /probe HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", status: []int{400}},
		{name: "NUL in field", req: "GET /probe HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", status: []int{400}},
		{name: "chunk size zz", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: []int{400}, headMay: true},
		{name: "chunk size -1", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n", status: []int{400}, headMay: true},
		{name: "chunk size 0x5", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", status: []int{400}, headMay: true},
		{name: "chunk size 17 digits", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n", status: []int{400}, headMay: true},
		{name: "chunk data without CRLF", req: "POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + smuggled, status: []int{400}, headMay: true, smuggled: true},
		{name: "repeated Host", req: "GET /probe HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: []int{400}},
		{name: "missing Host", req: "GET /probe HTTP/1.1\r\nX-A: a\r\n\r\n", status: []int{400}},
		{name: "oversized head", req: "GET /probe HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("a", 4000)+"\r\n", 10) + "\r\n", status: []int{431}},
		{name: "field line too long", req: "GET /probe HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 9000) + "\r\n\r\n", status: []int{431}},
		{name: "invalid method token", req: "G(T /probe HTTP/1.1\r\nHost: x\r\n\r\n", status: []int{400}},
		{name: "two spaces in request line", req: "GET  /probe HTTP/1.1\r\nHost: x\r\n\r\n", status: []int{400}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, mark := rec.since(0)
			got := exchange(t, gw.addr, tt.req)
			var status int
			fmt.Sscan(got, &status)
			ok := false
			for _, s := range tt.status {
				ok = ok || s == status
			}
			if !ok {
				t.Fatalf("status %d, want one of %v:\n%s", status, tt.status, got)
			}
			// A sentinel on its own connection: once the origin has answered it, any
			// byte of the probe the gateway forwarded has been recorded too, or was
			// never sent.
			sentinel := fmt.Sprintf("/sentinel-%d", i)
			if got := exchange(t, gw.addr, "GET "+sentinel+" HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "200\n") {
				t.Fatalf("sentinel: %s", got)
			}
			seen, _ := rec.since(mark)
			if strings.Contains(seen, "/admin") {
				t.Fatalf("the smuggled request reached the origin:\n%q", seen)
			}
			if !tt.headMay && strings.Contains(seen, "/probe") {
				t.Fatalf("the probe reached the origin:\n%q", seen)
			}
			if strings.Contains(seen, "/probe") {
				t.Logf("the head of the probe reached the origin before its body failed")
			}
			if !strings.Contains(seen, sentinel) {
				t.Fatalf("the sentinel did not reach the origin:\n%q", seen)
			}
		})
	}
}

func TestValidBodiesPass(t *testing.T) {
	rec := startRecorder(t, nil)
	gw := startProxying(t, rec.ln.Addr().String())
	tests := []struct {
		name, req, body string
	}{
		{"Content-Length", "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", "hello world"},
		{"chunked", "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", "hello world"},
		{"chunked with trailer", "POST /trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", "abc"},
		{"empty Content-Length", "POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, mark := rec.since(0)
			got := exchange(t, gw.addr, tt.req)
			if !strings.HasPrefix(got, "200\n") || !strings.HasSuffix(got, "\norigin") {
				t.Fatalf("got %s", got)
			}
			if b := rec.lastBody(); b != tt.body {
				t.Fatalf("origin got body %q, want %q", b, tt.body)
			}
			seen, _ := rec.since(mark)
			if strings.Count(seen, "HTTP/1.1\r\n") != 1 {
				t.Fatalf("origin saw:\n%q", seen)
			}
		})
	}
}

func TestDemoMode(t *testing.T) {
	p := startGateway(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0") // (not the fixed default port)
	urlRE := regexp.MustCompile(`curl .*(http://127\.0\.0\.1:\d+/)`)
	var url string
	waitFor(t, "the curl line", 10*time.Second, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("gateway exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if m := urlRE.FindStringSubmatch(p.stdout.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	})
	if strings.HasSuffix(url, ":0/") {
		t.Fatalf("printed the unbound address: %s", url)
	}
	tests := []struct {
		name string
		get  func(t *testing.T) (int, string)
	}{
		{"net/http", func(t *testing.T) (int, string) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}},
		{"curl", func(t *testing.T) (int, string) {
			curl, err := exec.LookPath("curl")
			if err != nil {
				t.Skip("curl not installed")
			}
			out, err := exec.Command(curl, "-sS", "--max-time", "5", "-w", "\n%{http_code}", url).Output()
			if err != nil {
				t.Fatalf("curl: %v", err)
			}
			i := strings.LastIndexByte(string(out), '\n')
			var code int
			fmt.Sscan(string(out[i+1:]), &code)
			return code, string(out[:i])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.get(t)
			if status != 200 || !strings.Contains(body, "Hello from the Gotthard demo origin") {
				t.Fatalf("got %d %q", status, body)
			}
		})
	}
}

func TestConfigTest(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		conf     string
		exitCode int
		stdout   string
		stderr   []string
		args     []string // more flags
	}{
		{"valid", "version: 1\ngrace_period_seconds: 0\nmax_retries: 2\n", 0, "configuration OK", nil, nil},
		{"unknown key", "version: 1\n\nno_such_key: 3\n", 1, "", []string{"no_such_key", "3"}, nil},
		// -t builds the services, so their problems show too.
		{"missing certificate", "version: 1\n", 1, "", []string{filepath.Join(dir, "missing.pem")},
			[]string{"-tls-listen", "127.0.0.1:0", "-cert", filepath.Join(dir, "missing.pem"), "-key", filepath.Join(dir, "missing.key")}},
		{"bad listen address", "version: 1\n", 1, "", []string{`service "gateway"`, `endpoint "6188"`}, []string{"-listen", "6188"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("conf%d.yaml", i))
			if err := os.WriteFile(path, []byte(tt.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startGateway(t, append([]string{"-t", "-c", path, "-upstream", "127.0.0.1:1"}, tt.args...)...)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Fatal("gateway -t did not exit")
			}
			code := p.cmd.ProcessState.ExitCode()
			if code != tt.exitCode {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tt.exitCode, p.stderr.String())
			}
			if !strings.Contains(p.stdout.String(), tt.stdout) {
				t.Fatalf("stdout %q lacks %q", p.stdout.String(), tt.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(p.stderr.String(), w) {
					t.Fatalf("stderr lacks %q:\n%s", w, p.stderr.String())
				}
			}
			if tt.name == "unknown key" && !regexp.MustCompile(`line 3\b|:3\b`).MatchString(p.stderr.String()) {
				t.Fatalf("stderr does not name line 3:\n%s", p.stderr.String())
			}
		})
	}
}

func TestSIGTERMDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	rec := startRecorder(t, release)
	gw := startProxying(t, rec.ln.Addr().String())
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	go func() {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + gw.addr + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-rec.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the origin")
	}
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the graceful shutdown to start", 5*time.Second, func() bool {
		return strings.Contains(gw.stderr.String(), "graceful shutdown started")
	})
	select {
	case <-gw.exited:
		t.Fatalf("exited with a request in flight: %v", gw.err)
	default:
	}
	close(release)
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "origin" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	gw.waitCleanExit(t, "SIGTERM")
}

// waitCleanExit waits for the gateway to exit, after what, with status 0.
func (p *gatewayProc) waitCleanExit(t *testing.T, after string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("gateway did not exit after %s", after)
	}
	if p.err != nil {
		t.Fatalf("gateway exit after %s: %v\n%s", after, p.err, p.stderr.String())
	}
}
