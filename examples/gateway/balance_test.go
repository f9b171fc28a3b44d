package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startNamed starts an origin that answers its name, on its own path /health too.
func startNamed(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// startBalancing runs the gateway with args and waits until it accepts.
func startBalancing(t *testing.T, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := startGateway(t, append([]string{"-listen", addr}, args...)...)
	p.waitAccepting(t, addr)
	return "http://" + addr
}

func get(t *testing.T, c *http.Client, url string, header ...string) string {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestBalancing(t *testing.T) {
	origins := []*httptest.Server{startNamed(t, "a"), startNamed(t, "b"), startNamed(t, "c")}
	var ups []string
	for _, o := range origins {
		ups = append(ups, strings.TrimPrefix(o.URL, "http://"))
	}
	upstream := strings.Join(ups, ",")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	t.Run("round-robin", func(t *testing.T) {
		url := startBalancing(t, "-upstream", upstream, "-health-check", "/health")
		count := map[string]int{}
		for range 30 {
			count[get(t, c, url+"/")]++
		}
		if count["a"] != 10 || count["b"] != 10 || count["c"] != 10 {
			t.Fatalf("spread %v, want 10 each", count)
		}
	})
	for _, algo := range []string{"ketama", "maglev"} {
		t.Run(algo+" header", func(t *testing.T) {
			url := startBalancing(t, "-upstream", upstream, "-lb", algo, "-hash-key", "header:X-User")
			seen := map[string]bool{}
			for i := range 20 {
				user := fmt.Sprint("user-", i)
				first := get(t, c, url+"/", "X-User", user)
				seen[first] = true
				for range 3 {
					if got := get(t, c, url+"/other", "X-User", user); got != first {
						t.Fatalf("%s went to %s, then %s", user, first, got)
					}
				}
			}
			if len(seen) < 2 {
				t.Fatalf("20 users all on %v", seen)
			}
		})
	}
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"-lb", "fastest"}, {"-lb", "ketama"}, {"-lb", "maglev", "-hash-key", "body"}} {
			p := startGateway(t, append([]string{"-listen", "127.0.0.1:0", "-upstream", upstream}, args...)...)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("%v: gateway did not exit", args)
			}
			if p.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(p.stderr.String(), "gateway:") {
				t.Fatalf("%v: exit %d, stderr %s", args, p.cmd.ProcessState.ExitCode(), p.stderr.String())
			}
		}
	})
}
