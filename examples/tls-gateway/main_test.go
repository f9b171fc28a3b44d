package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
)

// binary is the tls-gateway command built once for the tests.
var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "tls-gateway", &binary) }

// syncBuffer is a bytes.Buffer safe for a process to write and a test to read; wrote
// receives a value after each write that finds it empty.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// waitFor waits until the buffer holds sub, for at most d.
func (s *syncBuffer) waitFor(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for !strings.Contains(s.String(), sub) {
		select {
		case <-s.wrote:
		case <-deadline:
			t.Fatalf("no %q in the log:\n%s", sub, s)
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the command and returns its address and self-signed certificate file,
// read from what it prints; it stops the command at the end of the test.
func start(t *testing.T, args ...string) (addr, certFile string, stderr *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stderr = newSyncBuffer()
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	drained := make(chan struct{})
	go func() {
		<-drained // the lines below are read first; Wait closes the pipe
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("tls-gateway exited with %v\n%s", err, stderr)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("tls-gateway did not stop on SIGTERM")
		}
	})
	lines := make(chan string, 8)
	br := bufio.NewReader(out)
	go func() {
		defer close(drained)
		defer io.Copy(io.Discard, br)
		defer close(lines)
		for range 4 {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	reAddr := regexp.MustCompile(`on https://(\S+),`)
	reCert := regexp.MustCompile(`Self-signed certificate: (\S+)`)
	deadline := time.After(30 * time.Second)
	for addr == "" || certFile == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tls-gateway printed no address\n%s", stderr)
			}
			if m := reAddr.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
			if m := reCert.FindStringSubmatch(l); m != nil {
				certFile = m[1]
			}
		case <-deadline:
			t.Fatalf("tls-gateway did not start\n%s", stderr)
		}
	}
	return addr, certFile, stderr
}

func TestSelfSignedDemo(t *testing.T) {
	addr, certFile, logs := start(t, "-listen", "127.0.0.1:0")
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "demo origin") || resp.Proto != "HTTP/2.0" {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if resp.TLS.CurveID != tls.X25519MLKEM768 {
		t.Errorf("group %v, want X25519MLKEM768", resp.TLS.CurveID)
	}
	logs.waitFor(t, "tls_group=X25519MLKEM768", 10*time.Second)
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--max-time", "10", "--cacert", certFile, "https://"+addr+"/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "demo origin") {
			t.Errorf("curl: %v\n%s", err, out)
		}
	}
}
