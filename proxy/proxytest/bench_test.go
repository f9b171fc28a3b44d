package proxytest_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gotthard-proxy/gotthard/proxy"
	"github.com/gotthard-proxy/gotthard/proxy/proxytest"
)

func TestRawOrigin(t *testing.T) {
	for _, size := range []int{0, 1 << 10, 100 << 10} {
		origin := proxytest.NewRawOrigin(t, size)
		cl := proxytest.H1Client(t, nil)
		for range 3 { // on one kept-alive connection
			resp, err := cl.Get("http://" + origin + "/x")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.ContentLength != int64(size) || string(b) != strings.Repeat("x", size) {
				t.Fatalf("size %d: %s, Content-Length %d, %d bytes", size, resp.Status, resp.ContentLength, len(b))
			}
		}
	}
}

func TestFixedPeerAndDeadAddr(t *testing.T) {
	dead := proxytest.DeadAddr(t)
	if host, _, err := net.SplitHostPort(dead); err != nil || host != "127.0.0.1" {
		t.Fatalf("DeadAddr = %q, want a loopback address", dead)
	}
	if c, err := net.Dial("tcp", dead); err == nil {
		c.Close()
		t.Fatalf("something listens at DeadAddr %s", dead)
	}
	origin := proxytest.NewOrigin(t, echoProto)
	for _, tt := range []struct {
		name string
		peer *proxy.Peer
		want int
	}{
		{"origin", origin.Peer(), http.StatusOK},
		{"dead", &proxy.Peer{Address: dead}, http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := proxytest.NewService(t, "gw", proxytest.FixedPeer{Peer: tt.peer}, proxy.ServiceOptions{})
			addr := proxytest.Serve(t, svc)
			resp, err := proxytest.H1Client(t, nil).Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestServeAll(t *testing.T) {
	origin := proxytest.NewOrigin(t, echoProto)
	cert := proxytest.NewCert(t)
	svc := proxytest.NewService(t, "gw", &tagger{peer: origin.Peer()}, proxy.ServiceOptions{})
	svc.AddTCP("0.0.0.0:80")
	svc.AddTLS("0.0.0.0:443", cert.Config)
	addrs := proxytest.ServeAll(t, svc)
	if len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Fatalf("ServeAll = %q, want two addresses", addrs)
	}
	if _, body := get(t, proxytest.H1Client(t, nil), "http://"+addrs[0]+"/"); body != "HTTP/1.1 seen" {
		t.Fatalf("plain endpoint: %q", body)
	}
	if proto, body := get(t, proxytest.H2Client(t, cert), "https://"+addrs[1]+"/"); proto != "HTTP/2.0" || body != "HTTP/1.1 seen" {
		t.Fatalf("TLS endpoint: %s %q", proto, body)
	}
}

// TestBenchmarkGet runs BenchmarkGet briefly through a proxy to a raw origin, and checks
// that every request reached the origin over the one upstream connection the proxy keeps.
func TestBenchmarkGet(t *testing.T) {
	var opened uint64
	res := testing.Benchmark(func(b *testing.B) {
		svc := proxytest.NewService(b, "bench", proxytest.FixedPeer{Peer: &proxy.Peer{Address: proxytest.NewRawOrigin(b, 1<<10)}},
			proxy.ServiceOptions{MaxRequestsPerConn: -1})
		proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/1k", 1<<10, "Accept: */*")
		opened = svc.PoolStats().New
	})
	if res.N == 0 || res.Bytes != 1<<10 {
		t.Fatalf("benchmark result %+v", res)
	}
	if opened != 1 {
		t.Fatalf("%d upstream connections, want 1", opened)
	}
}

// BenchmarkProxyGet is a keep-alive GET of 1 KiB through a proxy to a raw origin: the
// helpers' own figures, for scale.
func BenchmarkProxyGet(b *testing.B) {
	svc := proxytest.NewService(b, "bench", proxytest.FixedPeer{Peer: &proxy.Peer{Address: proxytest.NewRawOrigin(b, 1<<10)}},
		proxy.ServiceOptions{MaxRequestsPerConn: -1})
	proxytest.BenchmarkGet(b, proxytest.Serve(b, svc), "/1k", 1<<10)
}
