package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reject-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "reject")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startBinary runs the command in front of upstream and waits until it accepts; it is
// killed when the test ends.
func startBinary(t *testing.T, upstream string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var stderr strings.Builder
	cmd := exec.Command(binary, append([]string{"-listen", addr, "-upstream", upstream}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("exited early")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not accepting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReject(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, "from origin")
	}))
	defer origin.Close()
	addr := startBinary(t, strings.TrimPrefix(origin.URL, "http://"), "-key", "k3y")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct {
		name    string
		key     string
		status  int
		body    string
		reached bool
	}{
		{"no key", "", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"wrong key", "nope", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"prefix of the key", "k3", 403, "Forbidden: missing or wrong X-Api-Key\n", false},
		{"right key", "k3y", 200, "from origin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			if tt.key != "" {
				req.Header.Set("X-Api-Key", tt.key)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(b) != tt.body {
				t.Fatalf("got %d %q", resp.StatusCode, b)
			}
			mu.Lock()
			defer mu.Unlock()
			if reached := len(seen) > before; reached != tt.reached {
				t.Fatalf("reached the origin: %v, want %v", reached, tt.reached)
			}
			if tt.reached && seen[len(seen)-1].Get("X-Api-Key") != "" {
				t.Fatalf("the key was forwarded to the origin")
			}
		})
	}
}
