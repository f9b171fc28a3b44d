package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/internal/proxyproto"
	"github.com/gotthard-proxy/gotthard/message"
	gtls "github.com/gotthard-proxy/gotthard/tls"
)

// addrProxy proxies to one peer and tells the peer the client address it sees.
type addrProxy struct {
	Phases[*testCtx]
	peer *Peer
}

func (addrProxy) NewCtx() *testCtx { return &testCtx{} }

func (p addrProxy) UpstreamPeer(context.Context, *Session, *testCtx) (*Peer, error) {
	return p.peer, nil
}

func (addrProxy) UpstreamRequestFilter(_ context.Context, s *Session, _ *testCtx, req *message.RequestHeader) error {
	req.Header.Set("X-Client-Addr", s.ClientAddr().String())
	req.Header.Set("X-Server-Addr", s.ServerAddr().String())
	return nil
}

// echoAddrs is an origin that answers with the forwarded addresses it got.
var echoAddrs = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "xff=%s client=%s server=%s", r.Header.Get("X-Forwarded-For"),
		r.Header.Get("X-Client-Addr"), r.Header.Get("X-Server-Addr"))
})

// dialFrom connects to addr from the loopback address ip (any of 127.0.0.0/8).
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// get sends GET / on c (after prefix) and returns the body.
func get(t *testing.T, c net.Conn, br *bufio.Reader, prefix []byte) string {
	t.Helper()
	if _, err := c.Write(append(prefix, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"...)); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return body
}

func TestProxyProtocolIn(t *testing.T) {
	_, origin := startOrigin(t, echoAddrs)
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	svc, logs := newTestService(t, addrProxy{peer: testPeer(origin)},
		ServiceOptions{ProxyProtocol: ProxyProtocolOptions{Trusted: trusted, Required: true}})
	addr := startProxy(t, svc)
	src, dst := netip.MustParseAddrPort("203.0.113.7:41000"), netip.MustParseAddrPort("198.51.100.2:80")
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", addr)
			br := bufio.NewReader(c)
			hdr, _ := proxyproto.Append(nil, v, src, dst)
			want := "xff=203.0.113.7 client=203.0.113.7:41000 server=198.51.100.2:80"
			if body := get(t, c, br, hdr); body != want {
				t.Errorf("got %q, want %q", body, want)
			}
			// The header comes once; the next request is the same client's.
			if body := get(t, c, br, nil); body != want {
				t.Errorf("second request: got %q, want %q", body, want)
			}
		})
	}
	t.Run("untrusted without header", func(t *testing.T) {
		// Served as a direct client, on the path for connections without a raw socket.
		c := dialFrom(t, "127.0.0.2", addr)
		br := bufio.NewReader(c)
		want := fmt.Sprintf("xff=127.0.0.2 client=%s server=%s", c.LocalAddr(), addr)
		for range 3 {
			if body := get(t, c, br, nil); body != want {
				t.Errorf("got %q, want %q", body, want)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		hdr, _ := proxyproto.Append(nil, 1, src, dst)
		for _, tt := range []struct{ from, send, log string }{
			{"127.0.0.1", "GET / HTTP/1.1\r\nHost: test\r\n\r\n", "no PROXY protocol header"},
			{"127.0.0.2", string(hdr) + "GET / HTTP/1.1\r\nHost: test\r\n\r\n", "untrusted"},
			{"127.0.0.1", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nGET / HTTP/1.1\r\n\r\n", "version 1 port"},
		} {
			c := dialFrom(t, tt.from, addr)
			io.WriteString(c, tt.send)
			if b, _ := io.ReadAll(c); len(b) != 0 {
				t.Errorf("%s %q: answered %q", tt.from, tt.send, b)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("no log line with %q in %s", tt.log, logs)
			}
		}
	})
}

// An origin behind a PROXY protocol listener sees each client's address, and clients
// with different addresses never share an upstream connection.
func TestProxyProtocolOut(t *testing.T) {
	for _, v := range []uint8{1, 2} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			pl, err := proxyproto.NewListener(ln, proxyproto.Options{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true})
			if err != nil {
				t.Fatal(err)
			}
			origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "origin saw "+r.RemoteAddr)
			})}
			go origin.Serve(pl)
			t.Cleanup(func() { origin.Close() })

			peer := testPeer(ln.Addr().String())
			peer.ProxyProtocol = v
			svc, _ := newTestService(t, fixedProxy{peer: peer}, ServiceOptions{})
			addr := startProxy(t, svc)
			for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
				c := dialFrom(t, from, addr)
				br := bufio.NewReader(c)
				want := "origin saw " + c.LocalAddr().String()
				for range 2 {
					if body := get(t, c, br, nil); body != want {
						t.Errorf("got %q, want %q", body, want)
					}
				}
			}
			// Two clients, two requests each: one new connection per client, reused
			// for its second request.
			if st := svc.PoolStats(); st.New != 2 || st.Reused != 2 {
				t.Errorf("pool: %+v, want 2 new and 2 reused", st)
			}
		})
	}
}

func TestProxyProtocolOptions(t *testing.T) {
	for _, tt := range []struct {
		o    ProxyProtocolOptions
		want string
	}{
		{ProxyProtocolOptions{Trusted: []netip.Prefix{{}}}, "ProxyProtocol.Trusted[0]"},
		{ProxyProtocolOptions{HeaderTimeout: -1}, "ProxyProtocol.HeaderTimeout"},
		{ProxyProtocolOptions{Required: true}, "ProxyProtocol.Required"},
	} {
		if err := (ServiceOptions{ProxyProtocol: tt.o}).Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.o, err, tt.want)
		}
	}
	p := testPeer("127.0.0.1:80")
	p.ProxyProtocol = 3
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "ProxyProtocol") {
		t.Errorf("ProxyProtocol 3: %v", err)
	}
	p.ProxyProtocol = 2
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runDaemon starts bin with args in dir, waits until it accepts on addr, and stops it
// by its PID when the test ends.
func runDaemon(t *testing.T, dir, addr, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", bin, err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept on %s: %v", bin, addr, err)
		}
	}
}

func lookBin(t *testing.T, name, pkg string) string {
	bin, err := exec.LookPath(name)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				return filepath.Join(d, name)
			}
		}
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return bin
}

// HAProxy sends the header (send-proxy and send-proxy-v2) to the proxy, whose origin
// gets the address of the client as HAProxy saw it.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	bin := lookBin(t, "haproxy", "haproxy")
	_, origin := startOrigin(t, echoAddrs)
	svc, _ := newTestService(t, addrProxy{peer: testPeer(origin)}, ServiceOptions{
		ProxyProtocol: ProxyProtocolOptions{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true},
	})
	proxyAddr := startProxy(t, svc)
	p1, p2 := freePort(t), freePort(t)
	conf := fmt.Sprintf(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:%d
  default_backend v1
backend v1
  server s %s send-proxy
frontend v2
  bind 127.0.0.1:%d
  default_backend v2
backend v2
  server s %s send-proxy-v2
`, p1, proxyAddr, p2, proxyAddr)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, dir, fmt.Sprintf("127.0.0.1:%d", p2), bin, "-db", "-f", "haproxy.cfg")
	for i, port := range []int{p1, p2} {
		t.Run(fmt.Sprint("v", i+1), func(t *testing.T) {
			c := dialFrom(t, "127.0.0.2", fmt.Sprintf("127.0.0.1:%d", port))
			body := get(t, c, bufio.NewReader(c), nil)
			want := fmt.Sprintf("xff=127.0.0.2 client=%s server=127.0.0.1:%d", c.LocalAddr(), port)
			if body != want {
				t.Errorf("got %q, want %q", body, want)
			}
		})
	}
}

// nginx, listening with proxy_protocol, accepts the header the proxy sends and reports
// the client's address from it.
func TestProxyProtocolToNginx(t *testing.T) {
	bin := lookBin(t, "nginx", "nginx")
	port := freePort(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`error_log stderr warn;
pid nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
  server {
    listen 127.0.0.1:%d proxy_protocol;
    location / { return 200 "pp=$proxy_protocol_addr:$proxy_protocol_port to=$proxy_protocol_server_addr:$proxy_protocol_server_port"; }
  }
}
`, port)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	nginxAddr := fmt.Sprintf("127.0.0.1:%d", port)
	runDaemon(t, dir, nginxAddr, bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off; master_process off;")
	for _, v := range []uint8{1, 2} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			peer := testPeer(nginxAddr)
			peer.ProxyProtocol = v
			svc, _ := newTestService(t, fixedProxy{peer: peer}, ServiceOptions{})
			addr := startProxy(t, svc)
			for _, from := range []string{"127.0.0.3", "127.0.0.4"} {
				c := dialFrom(t, from, addr)
				br := bufio.NewReader(c)
				la := c.LocalAddr().(*net.TCPAddr)
				want := fmt.Sprintf("pp=%s:%d to=%s", la.IP, la.Port, addr)
				for range 2 {
					if body := get(t, c, br, nil); body != want {
						t.Errorf("got %q, want %q", body, want)
					}
				}
			}
		})
	}
}

// On a TLS endpoint the header comes before the handshake; HTTP/2 by ALPN follows.
func TestProxyProtocolTLS(t *testing.T) {
	p := newPKI(t)
	cert := p.issue(t, "api", []string{"api.test"}, false)
	_, origin := startOrigin(t, echoAddrs)
	svc, _ := newTestService(t, addrProxy{peer: testPeer(origin)}, ServiceOptions{
		ProxyProtocol: ProxyProtocolOptions{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Required: true},
	})
	_, secure := startTLSProxy(t, svc, gtls.Options{Certificates: []gtls.CertFile{cert}})
	src, dst := netip.MustParseAddrPort("[2001:db8::7]:4242"), netip.MustParseAddrPort("[2001:db8::1]:443")
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: "api.test", RootCAs: p.pool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			hdr, _ := proxyproto.Append(nil, 2, src, dst)
			if _, err := c.Write(hdr); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	resp, body := getBody(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+secure+"/")
	want := "xff=2001:db8::7 client=[2001:db8::7]:4242 server=[2001:db8::1]:443"
	if resp.Proto != "HTTP/2.0" || body != want {
		t.Errorf("%s: got %q, want %q", resp.Proto, body, want)
	}
}
