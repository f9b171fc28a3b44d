package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/examples/internal/exampletest"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

var binary string

func TestMain(m *testing.M) { exampletest.Main(m, "first-proxy", &binary) }

// TestGuideShowsThisProgram keeps docs/first-proxy.md's last program identical to this
// one.
func TestGuideShowsThisProgram(t *testing.T) {
	guide, err := os.ReadFile("../../docs/first-proxy.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- examples/first-proxy/main.go -->\n```go\n"
	_, rest, ok := strings.Cut(string(guide), marker)
	if !ok {
		t.Fatalf("docs/first-proxy.md has no %q", marker)
	}
	block, _, ok := strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("docs/first-proxy.md: the program's code block does not end")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if block != string(src) {
		t.Fatalf("docs/first-proxy.md section 7 differs from main.go; copy main.go into the guide.\nguide:\n%s", block)
	}
}

// runCheck runs the program with -t and the configuration conf; it returns the exit
// code, standard output and standard error.
func runCheck(t *testing.T, conf string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-t", "-c", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("-t did not exit: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// writeCert writes a self-signed certificate and its key into dir.
func writeCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	certPEM, keyPEM, err := gtls.SelfSigned([]string{"localhost", "127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestConfigTest(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name   string
		conf   string
		code   int
		stdout string
		stderr []string
	}{
		{name: "good with TLS", code: 0, stdout: "configuration OK\n",
			conf: "version: 1\nlisten: 127.0.0.1:0\napi: 127.0.0.1:1\ntls:\n  listen: 127.0.0.1:0\n  cert: " + cert + "\n  key: " + key + "\n"},
		{name: "missing certificate", code: 1, stderr: []string{missing},
			conf: "version: 1\ntls:\n  cert: " + missing + "\n  key: " + key + "\n"},
		{name: "unknown app key", code: 1, stderr: []string{`conf.yaml:3: unknown key "lisen"`},
			conf: "version: 1\nlisten: 127.0.0.1:0\nlisen: 127.0.0.1:0\n"},
		{name: "unknown nested key", code: 1, stderr: []string{`conf.yaml:3: unknown key "tls.certfile"`},
			conf: "tls:\n  listen: 127.0.0.1:0\n  certfile: x\n"},
		{name: "listen without port", code: 1, stderr: []string{`service "router"`, `endpoint "6188"`},
			conf: "listen: \"6188\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCheck(t, tt.conf)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", stdout, tt.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestServes runs the program without -t, configured by its own keys, and sends it a
// request for each route.
func TestServes(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "api "+r.Header.Get("X-Request-Id"))
	}))
	defer api.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web")
	}))
	defer web.Close()
	listen := exampletest.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "conf.yaml")
	conf := "version: 1\nlisten: " + listen + "\napi: " + api.Listener.Addr().String() + "\nweb: " + web.Listener.Addr().String() + "\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-c", path)
	var stderr exampletest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatal("the program exited")
		case <-time.After(20 * time.Millisecond): // poll for the listener, up to the deadline
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted: %v", listen, err)
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for path, want := range map[string]string{"/healthz": "ok\n", "/api/x": "api ", "/page": "web"} {
		resp, err := cl.Get("http://" + listen + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
}
