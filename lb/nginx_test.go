package lb_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

// nginxPath is where Debian's nginx package installs the binary.
const nginxPath = "/usr/sbin/nginx"

func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat(nginxPath); err == nil {
		return nginxPath
	}
	t.Skip("nginx is not installed (Debian package nginx-light or nginx): the Ketama oracle test needs it")
	return ""
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// TestKetamaMatchesNginx runs nginx with "hash $arg_k consistent" over five weighted
// backends (servers of the same nginx that answer their own number) and checks that
// 10,000 keys map to the same backend as lb's Ketama.
func TestKetamaMatchesNginx(t *testing.T) {
	bin := findNginx(t)
	weights := []int{1, 2, 3, 1, 5}
	ports := freePorts(t, len(weights)+1)
	front := ports[len(weights)]
	var conf strings.Builder
	conf.WriteString("error_log stderr warn;\npid nginx.pid;\nevents { worker_connections 64; }\nhttp {\n")
	conf.WriteString("  access_log off;\n  client_body_temp_path tmp;\n  proxy_temp_path tmp;\n  fastcgi_temp_path tmp;\n  uwsgi_temp_path tmp;\n  scgi_temp_path tmp;\n")
	conf.WriteString("  upstream u {\n    hash $arg_k consistent;\n")
	var bs []lb.Backend
	for i, w := range weights {
		addr := "127.0.0.1:" + strconv.Itoa(ports[i])
		fmt.Fprintf(&conf, "    server %s weight=%d;\n", addr, w)
		bs = append(bs, lb.Backend{Addr: addr, Weight: w})
	}
	conf.WriteString("    keepalive 8;\n  }\n")
	for i := range weights {
		fmt.Fprintf(&conf, "  server { listen 127.0.0.1:%d; location / { return 200 \"%s\"; } }\n", ports[i], bs[i].Addr)
	}
	fmt.Fprintf(&conf, "  server { listen 127.0.0.1:%d; keepalive_requests 100000; location / {\n", front)
	conf.WriteString("    proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }\n}\n")

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off; master_process off;")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("nginx stderr:\n%s", stderr.String())
		}
	}()

	// Wait for nginx to accept on the front port.
	frontAddr := "127.0.0.1:" + strconv.Itoa(front)
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if c, err = net.DialTimeout("tcp", frontAddr, time.Second); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not accept on %s: %v", frontAddr, err)
		}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(90 * time.Second))

	l := newLB(t, lb.Ketama, bs)
	const nkeys = 10000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%dx%x", i, uint32(i)*2654435761)
	}
	// Pipeline the requests in batches over one keep-alive connection.
	br := bufio.NewReader(c)
	mismatches := 0
	count := map[string]int{}
	const batch = 100
	for start := 0; start < nkeys; start += batch {
		var req bytes.Buffer
		for _, k := range keys[start : start+batch] {
			fmt.Fprintf(&req, "GET /?k=%s HTTP/1.1\r\nHost: oracle\r\n\r\n", k)
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys[start : start+batch] {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("key %s: %v", k, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("key %s: status %d, %v", k, resp.StatusCode, err)
			}
			got := pickAddr(t, l, k, nil)
			count[got]++
			if got != string(body) {
				if mismatches++; mismatches <= 5 {
					t.Errorf("key %q: nginx chose %s, lb chose %s", k, body, got)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d keys mapped differently", mismatches, nkeys)
	}
	t.Logf("10000 keys mapped as nginx %s does; spread: %v", strings.Fields(string(must(exec.Command(bin, "-v").CombinedOutput())))[2], count)
}

func must[T any](v T, _ error) T { return v }
